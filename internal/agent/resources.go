package agent

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// cpuUnitsPerCPU is how ECS counts CPU: 1024 units per vCPU.
const cpuUnitsPerCPU = 1024

// registeredResources is what the host offers to tasks: its CPUs and memory less the reservations,
// never below zero.
func registeredResources(numCPU int, memTotalMiB int64, reservedCPU, reservedMemory int32) ecsv1alpha1.InstanceResources {
	cpu := int64(numCPU)*cpuUnitsPerCPU - int64(reservedCPU)
	mem := memTotalMiB - int64(reservedMemory)
	return ecsv1alpha1.InstanceResources{CPU: clampInt32(cpu), Memory: clampInt32(mem)}
}

func clampInt32(v int64) int32 {
	switch {
	case v < 0:
		return 0
	case v > 1<<31-1:
		return 1<<31 - 1
	default:
		return int32(v)
	}
}

// memTotalMiB reads MemTotal, in MiB, from a file in the format of /proc/meminfo.
func memTotalMiB(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseMemTotalMiB(f)
}

// parseMemTotalMiB reads the "MemTotal: <n> kB" line of /proc/meminfo.
func parseMemTotalMiB(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("unexpected MemTotal line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, fmt.Errorf("unexpected MemTotal line %q", sc.Text())
		}
		return kb / 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no MemTotal line")
}

// ecsArchitecture names a Go architecture as ECS does (ecs.cpu-architecture).
func ecsArchitecture(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "386":
		return "i386"
	default: // arm64 and the rest keep Go's name
		return goarch
	}
}

// ecsOSFamily names the operating system family as ECS does (ecs.os-family).
func ecsOSFamily(goos string) string {
	switch goos {
	case "windows":
		return "WINDOWS_SERVER"
	default:
		return strings.ToUpper(goos)
	}
}

// Built-in attribute names the agent reports in status.attributes.
const (
	AttributeOSType             = "ecs.os-type"
	AttributeOSFamily           = "ecs.os-family"
	AttributeCPUArchitecture    = "ecs.cpu-architecture"
	AttributeCapabilityExternal = "ecs.capability.external"
)

// builtinAttributes are the attributes every drover-agent reports, sorted by name.
func builtinAttributes(goos, goarch string) []ecsv1alpha1.Attribute {
	return []ecsv1alpha1.Attribute{
		{Name: AttributeCapabilityExternal},
		{Name: AttributeCPUArchitecture, Value: ecsArchitecture(goarch)},
		{Name: AttributeOSFamily, Value: ecsOSFamily(goos)},
		{Name: AttributeOSType, Value: goos},
	}
}
