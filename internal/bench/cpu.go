package bench

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// MachineCPU returns the machine's busy and total CPU time in clock ticks
// since boot, summed over all CPUs (Linux /proc/stat; zeros elsewhere). Two
// readings give the utilisation between them, which tells a benchmark phase
// limited by CPU from one limited by waiting.
func MachineCPU() (busy, total uint64) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0
	}
	for i, v := range fields[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}
