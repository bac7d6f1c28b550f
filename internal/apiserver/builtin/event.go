package builtin

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/storage/names"
)

// EventTTL is how long an Event is kept after its last update, as kube-apiserver's default.
const EventTTL = time.Hour

var eventFieldNames = []string{
	"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
	"involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
	"reason", "reportingComponent", "source", "type",
}

// NewEventStore returns the storage for core/v1 events, which expire after EventTTL.
func NewEventStore(optsGetter generic.RESTOptionsGetter) (*store, error) {
	return newStore(storeSpec{
		resource: corev1.Resource("events"), singular: "event",
		newFunc: func() runtime.Object { return &corev1.Event{} },
		newList: func() runtime.Object { return &corev1.EventList{} },
		strategy: &strategy{
			ObjectTyper: Scheme, NameGenerator: names.SimpleNameGenerator, namespaced: true,
			nameValidation: apivalidation.NameIsDNSSubdomain,
			validate:       validateEvent,
		},
		fields: func(obj runtime.Object) fields.Set {
			e := obj.(*corev1.Event)
			source := e.Source.Component
			if source == "" {
				source = e.ReportingController
			}
			return objectFields(&e.ObjectMeta, true, fields.Set{
				"involvedObject.kind":            e.InvolvedObject.Kind,
				"involvedObject.namespace":       e.InvolvedObject.Namespace,
				"involvedObject.name":            e.InvolvedObject.Name,
				"involvedObject.uid":             string(e.InvolvedObject.UID),
				"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
				"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
				"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
				"reason":                         e.Reason,
				"reportingComponent":             e.ReportingController,
				"source":                         source,
				"type":                           e.Type,
			})
		},
		table: &table{
			columns: []metav1.TableColumnDefinition{
				{Name: "Last Seen", Type: "string", Description: "Time since the event was last seen."},
				{Name: "Type", Type: "string", Description: "Normal or Warning."},
				{Name: "Reason", Type: "string", Description: "Why the event happened, in CamelCase."},
				{Name: "Object", Type: "string", Description: "The object the event is about."},
				{Name: "Message", Type: "string", Description: "What happened, for people."},
			},
			row: func(obj runtime.Object) []interface{} {
				e := obj.(*corev1.Event)
				last := e.LastTimestamp
				if last.IsZero() {
					last = metav1.NewTime(e.EventTime.Time)
				}
				return []interface{}{age(last), e.Type, e.Reason,
					fmt.Sprintf("%s/%s", lower(e.InvolvedObject.Kind), e.InvolvedObject.Name), e.Message}
			},
		},
		ttl:        EventTTL,
		shortNames: []string{"ev"},
	}, optsGetter)
}

func validateEvent(obj runtime.Object) field.ErrorList {
	e := obj.(*corev1.Event)
	var errs field.ErrorList
	if e.InvolvedObject.Namespace != "" && e.InvolvedObject.Namespace != e.Namespace {
		errs = append(errs, field.Invalid(field.NewPath("involvedObject", "namespace"), e.InvolvedObject.Namespace,
			"must match the event's metadata.namespace"))
	}
	if e.Type != "" && e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		errs = append(errs, field.NotSupported(field.NewPath("type"), e.Type, []string{corev1.EventTypeNormal, corev1.EventTypeWarning}))
	}
	if len(e.Message) > 4096 {
		errs = append(errs, field.TooLong(field.NewPath("message"), "", 4096))
	}
	return errs
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
