package main

import (
	"fmt"
	"os"
	"strings"
)

// The binaries the image must carry.
var imageBinaries = []string{"command-api", "projectors", "query-api", "notifier"}

// checkDockerfile holds the Dockerfile to its promises without an engine to build it: a build
// stage apart from a runtime stage, a runtime that is not root, and every binary in the image.
func checkDockerfile(file string) ([]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	text := string(data)
	stages, user, lastStage := 0, "", ""
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			stages++
			user, lastStage = "", ""
		case "USER":
			user = strings.Split(fields[1], ":")[0]
		}
		if stages > 0 {
			lastStage += line + "\n"
		}
	}
	var problems []string
	if stages < 2 {
		problems = append(problems, fmt.Sprintf("%d stage(s): want a build stage and a runtime stage", stages))
	}
	if user == "" || user == "root" || user == "0" {
		problems = append(problems, "the runtime stage runs as root: give it a USER")
	}
	for _, binary := range imageBinaries {
		if !strings.Contains(text, "target/release/"+binary) {
			problems = append(problems, "the image does not carry "+binary)
		}
	}
	if !strings.Contains(lastStage, "COPY --from=") {
		problems = append(problems, "the runtime stage copies nothing from the build stage")
	}
	return problems, nil
}
