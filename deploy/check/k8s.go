package main

import (
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// A workload: the name of a Deployment or StatefulSet and its pod template.
type workload struct {
	kind, name string
	template   corev1.PodTemplateSpec
}

func checkKubernetes(dir string) ([]string, error) {
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	// Strict: a misspelt or misplaced field is an error, as the API server's field validation
	// would make it, rather than silently dropped.
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

	var workloads []workload
	var budgets []*policyv1.PodDisruptionBudget
	var services []*corev1.Service
	var problems []string
	migration := false
	for _, resource := range resources.Resources() {
		yaml, err := resource.AsYAML()
		if err != nil {
			return nil, err
		}
		object, _, err := decoder.Decode(yaml, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", resource.GetKind(), resource.GetName(), err)
		}
		switch o := object.(type) {
		case *appsv1.Deployment:
			workloads = append(workloads, workload{"Deployment", o.Name, o.Spec.Template})
		case *appsv1.StatefulSet:
			workloads = append(workloads, workload{"StatefulSet", o.Name, o.Spec.Template})
		case *policyv1.PodDisruptionBudget:
			budgets = append(budgets, o)
		case *corev1.Service:
			services = append(services, o)
		case *batchv1.Job:
			for _, c := range o.Spec.Template.Spec.Containers {
				if slices.Equal(c.Command, []string{"projectors", "migrate"}) {
					migration = true
				}
			}
			problems = append(problems, checkPod("Job "+o.Name, o.Spec.Template.Spec, false)...)
		}
	}
	if !migration {
		problems = append(problems, "no Job runs `projectors migrate`")
	}
	for _, w := range workloads {
		where := w.kind + " " + w.name
		problems = append(problems, checkPod(where, w.template.Spec, true)...)
		if !slices.ContainsFunc(budgets, func(b *policyv1.PodDisruptionBudget) bool { return selects(b.Spec.Selector, w.template.Labels) }) {
			problems = append(problems, where+": no PodDisruptionBudget selects its pods")
		}
	}
	for _, s := range services {
		selected := slices.ContainsFunc(workloads, func(w workload) bool {
			return len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.template.Labels))
		})
		if !selected {
			problems = append(problems, "Service "+s.Name+": selects no workload's pods")
		}
	}
	return problems, nil
}

func selects(selector *metav1.LabelSelector, podLabels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(selector)
	return err == nil && !s.Empty() && s.Matches(labels.Set(podLabels))
}

// checkPod holds a pod to what the README promises: non-root, resource requests, secrets only
// as mounted files, and for a long-running service the /health and /ready probes.
func checkPod(where string, pod corev1.PodSpec, service bool) []string {
	var problems []string
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		problems = append(problems, where+": the pod does not set runAsNonRoot")
	}
	for _, c := range pod.Containers {
		at := where + " container " + c.Name
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			problems = append(problems, at+": no cpu and memory requests")
		}
		if service {
			if !probes(c.LivenessProbe, "/health") {
				problems = append(problems, at+": the liveness probe is not GET /health")
			}
			if !probes(c.ReadinessProbe, "/ready") {
				problems = append(problems, at+": the readiness probe is not GET /ready")
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				problems = append(problems, at+": the secret "+e.Name+" is a variable: mount it and set its _FILE setting")
			}
			if secretVariables[e.Name] {
				problems = append(problems, at+": "+e.Name+" set inline: mount it and set its _FILE setting")
			}
		}
		for _, from := range c.EnvFrom {
			if from.SecretRef != nil {
				problems = append(problems, at+": a secret as variables (envFrom): mount it as files")
			}
		}
	}
	return problems
}

func probes(probe *corev1.Probe, path string) bool {
	return probe != nil && probe.HTTPGet != nil && probe.HTTPGet.Path == path
}
