package registration

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

const (
	// maxEventHostname bounds how much of a caller-chosen host name an Event repeats.
	maxEventHostname = 64
	// maxEventNameBase is the longest name an object may have (DNS-1123 subdomain).
	maxEventNameBase = 253
)

// recordRefusal records a Warning Event on the activation saying why a registration was refused and
// from where. It never carries the code. Refusals are rate limited per activation, and so are these
// Events.
func (s *Server) recordRefusal(ctx context.Context, log klog.Logger, act *ecsv1alpha1.Activation, hostname, source string, why refusal) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if len(hostname) > maxEventHostname {
		hostname = hostname[:maxEventHostname] + "..."
	}
	t := s.now()
	now := metav1.NewTime(t)
	// Named as Kubernetes names events: the object's name and a hex timestamp.
	suffix := fmt.Sprintf(".%x", t.UnixNano())
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: strings.TrimRight(act.Name[:min(len(act.Name), maxEventNameBase-len(suffix))], "-.") + suffix, Namespace: act.Namespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: ecsv1alpha1.GroupVersion.String(), Kind: "Activation",
			Namespace: act.Namespace, Name: act.Name, UID: act.UID, ResourceVersion: act.ResourceVersion,
		},
		Reason:              ReasonRegistrationRefused,
		Message:             fmt.Sprintf("Registration of host %q from %s refused: %s", hostname, source, why),
		Type:                corev1.EventTypeWarning,
		Source:              corev1.EventSource{Component: eventComponent},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		ReportingController: eventComponent,
	}
	if err := s.client.Create(ctx, ev); err != nil {
		log.Error(err, "Recording a refused registration")
	}
}
