package taskdefinition

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ecsv1alpha1 "github.com/drover-dev/drover/apis/ecs/v1alpha1"
)

// setCurrent records rev as the revision holding the current spec.
func setCurrent(td *ecsv1alpha1.TaskDefinition, rev *ecsv1alpha1.TaskDefinitionRevision) {
	td.Status.LatestRevision = rev.Spec.Revision
	td.Status.LatestRevisionName = rev.Name
	td.Status.ObservedGeneration = td.Generation
	setCondition(td, metav1.ConditionTrue, ecsv1alpha1.TaskDefinitionReasonRevisionCreated, "revision "+rev.Name+" holds the current spec")
}

// setPending says the current spec's revision is not created yet.
func setPending(td *ecsv1alpha1.TaskDefinition, msg string) {
	setCondition(td, metav1.ConditionFalse, ecsv1alpha1.TaskDefinitionReasonRevisionPending, msg)
}

// setFailed says creating the current spec's revision failed.
func setFailed(td *ecsv1alpha1.TaskDefinition, msg string) {
	setCondition(td, metav1.ConditionFalse, ecsv1alpha1.TaskDefinitionReasonRevisionFailed, msg)
}

func setCondition(td *ecsv1alpha1.TaskDefinition, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&td.Status.Conditions, metav1.Condition{
		Type: ecsv1alpha1.TaskDefinitionConditionRevisionCurrent, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: td.Generation,
	})
}
