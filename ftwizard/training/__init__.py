"""The training step: plan, confirm, create (idempotently), follow and control a training job."""
