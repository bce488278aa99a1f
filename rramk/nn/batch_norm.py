"""Batch norm over the global batch of a data-parallel run: statistics all-reduced over the processes.

:func:`use_global_batch_norm` swaps every ``nn.BatchNorm1d/2d`` of a model for
:class:`GlobalBatchNormLayer`, so that a 2-process run of global batch B computes what a 1-process
run of batch B computes (README, "Choices made where MODEL.md is silent").
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GlobalBatchNorm", "GlobalBatchNormLayer", "use_global_batch_norm"]


class GlobalBatchNorm(torch.autograd.Function):
    """Batch-norm statistics over the global batch of all processes (all-reduce of sums)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        import torch.distributed as dist

        dims = [0] + list(range(2, x.dim()))
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        sums = torch.cat([x.sum(dims), (x * x).sum(dims), count])
        dist.all_reduce(sums)
        c = x.shape[1]
        n = sums[-1]
        mean = sums[:c] / n
        var = (sums[c:2 * c] / n - mean * mean).clamp(min=0)
        shape = [1, c] + [1] * (x.dim() - 2)
        inv_std = torch.rsqrt(var + eps)
        x_hat = (x - mean.view(shape)) * inv_std.view(shape)
        ctx.save_for_backward(x_hat, weight, inv_std, n)
        ctx.dims, ctx.shape = dims, shape
        unbiased = var * n / (n - 1)
        ctx.mark_non_differentiable(mean, unbiased)
        return x_hat * weight.view(shape) + bias.view(shape), mean, unbiased

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        import torch.distributed as dist

        x_hat, weight, inv_std, n = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        local = torch.cat([grad_out.sum(dims), (grad_out * x_hat).sum(dims)])
        grad_bias_local, grad_weight_local = local.split(weight.numel())
        total = local.clone()
        dist.all_reduce(total)
        sum_dy, sum_dy_xhat = total.split(weight.numel())
        grad_x = weight.view(shape) * inv_std.view(shape) * (
            grad_out - (sum_dy.view(shape) + x_hat * sum_dy_xhat.view(shape)) / n)
        # grad_x is the gradient of the sum of every process's loss (the all-reduced sums), which
        # DDP's average over processes turns into the gradient of the global mean loss; the
        # parameters' local sums are each process's share of that same sum, so they go to DDP
        # as they are (as in torch.nn.SyncBatchNorm); scaling them by the world size would
        # make the batch-norm gradients world_size times the single-process ones
        return grad_x, grad_weight_local, grad_bias_local, None


class GlobalBatchNormLayer(nn.modules.batchnorm._BatchNorm):
    """Drop-in for BatchNorm1d/2d whose training statistics span all processes."""

    def _check_input_dim(self, x):
        if x.dim() not in (2, 4):
            raise ValueError(f"input: expected 2-D or 4-D input, got {x.dim()}-D")

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        y, mean, var = GlobalBatchNorm.apply(x, self.weight, self.bias, self.eps)
        with torch.no_grad():
            self.running_mean.mul_(1 - self.momentum).add_(mean, alpha=self.momentum)
            self.running_var.mul_(1 - self.momentum).add_(var, alpha=self.momentum)
            self.num_batches_tracked += 1
        return y


def use_global_batch_norm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d of ``model`` by a GlobalBatchNormLayer with the same state."""
    for name, child in model.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            layer = GlobalBatchNormLayer(child.num_features, child.eps, child.momentum)
            layer.load_state_dict(child.state_dict())
            setattr(model, name, layer.to(child.weight.device))
        else:
            use_global_batch_norm(child)
    return model
