package bench

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
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

// ProcessCPU returns the CPU time (user + system) used so far by every
// process whose command name is comm (for example "postgres" or
// "redis-server"), from /proc/<pid>/stat; 0 elsewhere. Processes that exit
// between two readings take their time with them, so compare readings of
// long-lived servers only.
func ProcessCPU(comm string) time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		if name, cpu, ok := statCPU(string(b)); ok && name == comm {
			total += cpu
		}
	}
	return total
}

// pidCPU returns the CPU time (user + system, all threads) process pid has
// used so far, from /proc/<pid>/stat; 0 elsewhere.
func pidCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	_, cpu, _ := statCPU(string(b))
	return cpu
}

// statCPU reads a /proc/<pid>/stat line: the command name and the CPU time
// (utime + stime, fields 14 and 15, in ticks of USER_HZ, 100 on Linux).
func statCPU(s string) (comm string, cpu time.Duration, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, false
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return "", 0, false
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	k, _ := strconv.ParseUint(f[12], 10, 64)
	return s[open+1 : end], time.Duration(u+k) * time.Second / 100, true
}

// redisCPU returns the CPU time the Redis server has used so far (INFO cpu),
// or 0 when it cannot be read.
func redisCPU(ctx context.Context, rdb redis.UniversalClient) time.Duration {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// selfCPU returns the CPU time (user + system) this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
