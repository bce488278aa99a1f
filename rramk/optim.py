"""Optimizers of binarized networks: on simulated RRAM (WeakResetAdam) or in software (LatentAdam).

Both route the parameters the same way, in one place (:func:`route_parameters`): the binary weights
(``rramk.nn.is_binary``) on one side, every other parameter (biases, batch-norm scale and shift) on
the other, which plain Adam trains.

* ``WeakResetAdam`` (MODEL.md section 3): each binary weight tensor lives in a
  ``rramk.DeviceArray``; a step turns its Adam moments into at most ``max_pulses`` weak-RESET pulses
  per synapse (one fused kernel launch per tensor on CUDA) and writes the +1/-1 weights the devices
  read back into the parameter. The pulse learning rate is the ``lr`` of the device param groups, so
  torch's learning-rate schedulers act on it. With ``refresh``, after a step, the synapses that can
  no longer move are SET and their weights re-written (``rramk.device.refresh``).
* ``LatentAdam``: the ideal (software) BNN: Adam on real-valued latent weights, clipped to [-1, 1]
  after each step; the layers binarize them by sign in the forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from .device.array import DeviceArray
from .device.config import HfOxWeakReset
from .device.families import device_from_dict
from .device.refresh import Refresh
from rramk.nn.layers import is_binary

KINDS = ("binary", "float")


def route_parameters(params, binary_options: dict, float_options: dict) -> list[dict]:
    """Split params (tensors or param-group dicts) into groups of one kind each.

    Binary weights go to groups with ``kind="binary"`` and ``binary_options``; all other
    parameters to groups with ``kind="float"`` and ``float_options``. Options a user group
    sets itself win. Empty groups are dropped.
    """
    params = list(params)
    if not params:
        raise ValueError("params: expected at least one parameter")
    groups = params if isinstance(params[0], dict) else [{"params": params}]
    routed = []
    for group in groups:
        members = list(group["params"])
        user = {k: v for k, v in group.items() if k != "params"}
        binary = [p for p in members if is_binary(p)]
        plain = [p for p in members if not is_binary(p)]
        if binary:
            routed.append({**binary_options, **user.get("binary", {}), "params": binary, "kind": "binary"})
        if plain:
            routed.append({**float_options, **user.get("float", {}), "params": plain, "kind": "float"})
    return routed


def _adam_(param: torch.Tensor, state: dict, lr: float, betas: tuple[float, float], eps: float) -> None:
    """One Adam step of a float parameter (torch.optim.Adam's update)."""
    grad = param.grad
    if "exp_avg" not in state:
        state["step"] = 0
        state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
    state["step"] += 1
    beta1, beta2 = betas
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.mul_(beta1).add_(grad, alpha=1 - beta1)
    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1 ** state["step"]
    bias_correction2 = 1 - beta2 ** state["step"]
    denominator = (v.sqrt() / math.sqrt(bias_correction2)).add_(eps)
    param.addcdiv_(m, denominator, value=-lr / bias_correction1)


class WeakResetAdam(torch.optim.Optimizer):
    """Adam turned into weak-RESET pulses on simulated HfOx 2T2R synapses (MODEL.md section 3).

    Args:
        params: the model's parameters (or param groups); binary weights are found by
            ``rramk.nn.is_binary``.
        config: the device model (``rramk.HfOxWeakReset()`` and its ablations).
        lr_pulses: pulse learning rate of the binary weights (the published runs used 8 to 100),
            the ``lr`` of the binary param groups.
        lr: Adam learning rate of the float parameters (published: 8e-3).
        seed: seed of the devices, in [0, 2**32); binary tensor i gets the array seed
            seed + i * 2**32, so every tensor has its own random streams.
        betas, eps: Adam settings of every parameter, the pulse rule's (MODEL.md section 3) and
            the float parameters'.
        backend: DeviceArray backend ("auto": Triton on CUDA, torch.compile on large CPU arrays).
        initial_pulses: RESET pulses given, before training, to one randomly chosen device of
            every synapse (the programming of a random initial weight). Without D2D variability
            all devices are identical and every fresh weight would read +1 (a tie), a symmetric
            start that gradient descent cannot break; one pulse makes the weights random. With
            D2D variability the weights are random already and one pulse changes little.
        refresh: a ``rramk.device.refresh.Refresh`` policy, or its command-line form (e.g.
            ``"past_t_star"``, ``"window:margin=0.05,every=10"``); None or ``"off"`` (default): the
            published rule, no SET ever. After every ``every``-th step of a weight tensor, its
            synapses whose condition holds are SET (both devices back to low resistance, a new
            cycle) and re-written to the weight they held (``DeviceArray.refresh``).
    """

    def __init__(self, params: Iterable, config: HfOxWeakReset | None = None, lr_pulses: float = 20.0,
                 lr: float = 8e-3, seed: int = 0, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 backend: str = "auto", initial_pulses: int = 1, refresh: Refresh | str | None = None):
        if not lr_pulses > 0:
            raise ValueError(f"lr_pulses: expected > 0 (pulses per unit of normalized Adam step), got {lr_pulses}")
        if not lr >= 0:
            raise ValueError(f"lr: expected >= 0, got {lr}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"seed: expected an int in [0, 2**32), got {seed!r}")
        if not (isinstance(initial_pulses, int) and initial_pulses >= 0):
            raise ValueError(f"initial_pulses: expected an integer >= 0, got {initial_pulses!r}")
        if isinstance(refresh, str) or refresh is None:
            refresh = Refresh.parse(refresh)
        if refresh is not None and not isinstance(refresh, Refresh):
            raise TypeError(f"refresh: expected a rramk.device.refresh.Refresh, a string or None, got {refresh!r}")
        self.refresh = refresh
        self.config = config if config is not None else HfOxWeakReset()
        self.seed = seed
        self.backend = backend
        groups = route_parameters(params, {"lr": lr_pulses, "betas": betas, "eps": eps},
                                  {"lr": lr, "betas": betas, "eps": eps})
        super().__init__(groups, {"lr": lr, "betas": betas, "eps": eps})
        index = 0
        for group in self.param_groups:
            if group["kind"] != "binary":
                continue
            for p in group["params"]:
                array = DeviceArray(tuple(p.shape), self.config, seed=seed + (index << 32), device=p.device,
                                    backend=backend)
                if initial_pulses:
                    side = torch.Generator().manual_seed(seed + (index << 32))
                    sign = torch.randint(0, 2, tuple(p.shape), generator=side, dtype=torch.int32) * 2 - 1
                    array.apply_pulses((sign * initial_pulses).to(p.device))
                self.state[p] = {"step": 0, "exp_avg": torch.zeros_like(p, dtype=torch.float32),
                                 "exp_avg_sq": torch.zeros_like(p, dtype=torch.float32), "device": array,
                                 "sign_flips": torch.zeros((), dtype=torch.int64, device=p.device)}
                with torch.no_grad():
                    p.copy_(array.weights())
                index += 1

    def device_arrays(self) -> list[DeviceArray]:
        """The DeviceArray of every binary weight tensor, in param-group order."""
        return [self.state[p]["device"] for g in self.param_groups if g["kind"] == "binary" for p in g["params"]]

    def device_statistics(self) -> dict[str, float]:
        """How worn the devices are and how much the weights move ({} without binary weights).

        ``pulses_per_device``: the mean RESET pulse count t (since the last SET) over every device (two per
        synapse); ``fraction_past_t_star``: the share of devices with t >= their own t_star (in
        the slow, saturating regime); ``sign_flips_per_synapse``: weight sign changes per synapse
        since the previous call, which resets the count. With a refresh policy, also the endurance:
        ``sets_per_device`` (mean SET operations per device, cumulative), ``max_sets_per_device``,
        ``reset_pulses_per_device`` (mean RESET pulses per device in all, before and since its SETs,
        the re-write pulses included; ``pulses_per_device`` counts those since the last SET) and
        ``failed_rewrites`` (refreshes whose re-write did not read the weight held within
        ``max_write_pulses``, after the policy's retries, cumulative) and, with retries,
        ``retried_rewrites`` (the SETs that retried).
        """
        params = [p for g in self.param_groups if g["kind"] == "binary" for p in g["params"]]
        if not params:
            return {}
        pulses, past, devices, flips = 0.0, 0.0, 0, 0
        sets, most_sets, reset_pulses, failed, retried = 0, 0, 0, 0, 0
        for p in params:
            state = self.state[p]
            total, worn = state["device"].wear()  # chunk by chunk: no copy of the array's size
            pulses += total
            past += worn
            devices += 2 * state["device"].numel
            flips += int(state["sign_flips"].item())
            state["sign_flips"].zero_()
            if self.refresh is not None:
                k = torch.stack(state["device"].set_counts())
                sets += int(k.sum())
                most_sets = max(most_sets, int(k.max()))
                reset_pulses += state["device"].reset_pulses()
                failed += state["device"].failed_rewrites
                retried += state["device"].retried_rewrites
        synapses = devices // 2
        stats = {"pulses_per_device": pulses / devices, "fraction_past_t_star": past / devices,
                 "sign_flips_per_synapse": flips / synapses}
        if self.refresh is not None:
            stats.update(sets_per_device=sets / devices, max_sets_per_device=most_sets,
                         reset_pulses_per_device=reset_pulses / devices, failed_rewrites=failed)
            if self.refresh.retries:  # only then: the metrics of runs without retries keep their fields
                stats["retried_rewrites"] = retried
        return stats

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if group["kind"] == "float":
                    _adam_(p, self.state[p], group["lr"], group["betas"], group["eps"])
                    continue
                state = self.state[p]
                state["step"] += 1
                array = state["device"]
                before = array.weights_int8()
                array.adam_step(p.grad.to(torch.float32).contiguous(), state["exp_avg"], state["exp_avg_sq"],
                                step=state["step"], lr_pulses=group["lr"], betas=group["betas"], eps=group["eps"])
                if self.refresh is not None and self.refresh.due_at(state["step"]):
                    array.refresh(self.refresh.condition, margin=self.refresh.margin, limit=self.refresh.limit,
                                  max_write_pulses=self.refresh.max_write_pulses, retries=self.refresh.retries,
                                  read_noise=self.refresh.read_noise, verify_margin=self.refresh.verify_margin,
                                  above=self.refresh.above, check_noise=self.refresh.check_noise)
                after = array.weights_int8()
                p.copy_(after.view(p.shape))
                # count_nonzero: a bool tensor's sum() first copies it to int64 (~6 ms per step on the MNIST layer)
                state["sign_flips"] += torch.count_nonzero(before != after)
        return loss

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["state"] = {k: ({**v, "device": v["device"].state_dict()} if "device" in v else v)
                          for k, v in state["state"].items()}
        state["rramk"] = {"config": self.config.to_dict(), "seed": self.seed,
                          **({"refresh": str(self.refresh)} if self.refresh is not None else {})}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        saved = state_dict.get("rramk", {})
        if saved.get("seed", self.seed) != self.seed:
            raise ValueError(f"state_dict: made with seed {saved['seed']}, this optimizer has seed {self.seed}")
        if "config" in saved and device_from_dict(saved["config"]) != self.config:
            raise ValueError("state_dict: made with another device config")
        state_dict = dict(state_dict)
        device_states = {k: v["device"] for k, v in state_dict["state"].items() if "device" in v}
        state_dict["state"] = {k: {kk: vv for kk, vv in v.items() if kk != "device"}
                               for k, v in state_dict["state"].items()}
        arrays = {id(p): self.state[p]["device"] for g in self.param_groups if g["kind"] == "binary"
                  for p in g["params"]}
        super().load_state_dict(state_dict)
        index = 0
        for group in self.param_groups:
            for p in group["params"]:
                if group["kind"] == "binary":
                    array = arrays[id(p)]
                    array.load_state_dict(device_states[index])
                    self.state[p]["device"] = array
                    self.state[p]["step"] = int(self.state[p]["step"])
                    # Optimizer.load_state_dict casts tensors to the parameter's dtype: a count is an integer
                    self.state[p]["sign_flips"] = self.state[p]["sign_flips"].to(torch.int64)
                    with torch.no_grad():
                        p.copy_(array.weights())
                index += 1


class LatentAdam(torch.optim.Optimizer):
    """The ideal BNN's optimizer: Adam on every parameter, binary latent weights clipped to [-1, 1].

    Args:
        params: the model's parameters (or param groups).
        lr: Adam learning rate of the float parameters.
        lr_latent: Adam learning rate of the binary latent weights (default: ``lr``).
    """

    def __init__(self, params: Iterable, lr: float = 8e-3, lr_latent: float | None = None,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if not lr >= 0:
            raise ValueError(f"lr: expected >= 0, got {lr}")
        options = {"betas": betas, "eps": eps}
        groups = route_parameters(params, {"lr": lr if lr_latent is None else lr_latent, **options},
                                  {"lr": lr, **options})
        super().__init__(groups, {"lr": lr, **options})

    def device_statistics(self) -> dict[str, float]:
        """No devices, no device statistics (the interface of WeakResetAdam.device_statistics)."""
        return {}

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                _adam_(p, self.state[p], group["lr"], group["betas"], group["eps"])
                if group["kind"] == "binary":
                    p.clamp_(-1.0, 1.0)
        return loss
