package framework

import (
	"context"

	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Modify reads obj afresh, applies change to it and updates it, starting over when the update
// conflicts with a concurrent writer. Controllers write status, and every status write moves the
// object's resourceVersion, so a test that changes a spec while controllers run must expect the
// conflicts that a user's kubectl edit would retry.
func Modify[T client.Object](ctx context.Context, c client.Client, obj T, change func(T)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return c.Update(ctx, obj)
	})
}
