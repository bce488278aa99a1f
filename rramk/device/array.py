"""DeviceArray: an array of 2T2R synapses (pairs of HfOx devices) under weak-RESET pulses.

The state is what ``rramk.device.weak_reset`` describes: 16 bytes per synapse (pulse counts, RTN
states and pink terms of both devices), plus the weights read last, kept as a cache. Every
operation runs through the one dispatcher, ``rramk.device.backends``: the eager reference,
``torch.compile`` on CPUs or the fused Triton kernels on GPUs, all computing the same bits.
"""

from __future__ import annotations

import math

import torch

from . import backends, weak_reset, weak_reset_adam
from .backends import BACKENDS
from .config import HfOxWeakReset

STATE_FORMAT = "rramk.DeviceArray/1"


def _check_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape: expected an int or a tuple of ints, got {shape!r}") from None
    if any(s <= 0 for s in shape):
        raise ValueError(f"shape: every dimension must be > 0, got {shape}")
    if math.prod(shape) >= 2**32:
        raise ValueError(f"shape: an array holds fewer than 2**32 synapses (Philox counter c0), got {math.prod(shape)}")
    return shape


class DeviceArray:
    """``shape`` synapses, each a pair of devices (BL, BLb) reading W = sign(R_BL - R_BLb).

    Args:
        shape: shape of the weight tensor the array stores.
        config: the device model (default ``HfOxWeakReset()``, the published fit).
        seed: key of every random number of the array (int in [0, 2**63)).
        device: torch device of the state.
        backend: "auto", "reference", "compiled" or "triton" (module docstring).
        dtype: float type of the resistance arithmetic (float32; float64 with "reference").
    """

    def __init__(self, shape, config: HfOxWeakReset | None = None, seed: int = 0, device="cpu",
                 backend: str = "auto", dtype: torch.dtype = torch.float32):
        self.shape = _check_shape(shape)
        if config is None:
            config = HfOxWeakReset()
        if not isinstance(config, HfOxWeakReset):
            raise TypeError(f"config: expected an rramk.HfOxWeakReset, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            raise ValueError(f"seed: expected an int in [0, 2**63), got {seed!r}")
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype}")
        self.config = config
        self.seed = seed
        self.device = torch.device(device)
        self.dtype = dtype
        self.numel = math.prod(self.shape)
        self.backend = backends.resolve_backend(backend, self.device, dtype, self.numel)
        self.updates = 0
        self._state = torch.zeros((2, self.numel), dtype=torch.int32, device=self.device)
        self._pink = torch.zeros((2, self.numel), dtype=dtype, device=self.device)
        self._weights = self._read_weights()

    # ------------------------------------------------------------------ backends
    def _run(self, op: backends.Operation, flat: list[torch.Tensor], **kwargs):
        return backends.run(op, self.backend, flat, self._state, self._pink, config=self.config, seed=self.seed,
                            **kwargs)

    def _read_log_resistance(self) -> torch.Tensor:
        return self._run(backends.READ, [], updates=self.updates)[0]

    def _read_weights(self) -> torch.Tensor:
        return weak_reset.read_weights(self._read_log_resistance())

    # ------------------------------------------------------------------ updates
    def apply_pulses(self, n: torch.Tensor) -> None:
        """Apply one update: n > 0 RESET pulses to BL, n < 0 |n| pulses to BLb, 0 none.

        ``n`` is an integer tensor of the array's shape on the array's device; |n| < 2**24.
        Every device's RTN term is redrawn, pulsed or not.
        """
        if not isinstance(n, torch.Tensor):
            raise TypeError(f"n: expected an integer torch.Tensor of shape {self.shape}, got {type(n).__name__}")
        if n.dtype == torch.bool or n.dtype.is_floating_point or n.dtype.is_complex:
            raise ValueError(
                f"n: expected a signed integer tensor of pulse counts (int8/16/32/64), got dtype {n.dtype}; "
                "round and convert it first, e.g. n.round().to(torch.int32)"
            )
        if tuple(n.shape) != self.shape:
            raise ValueError(f"n: expected shape {self.shape} (the array's shape), got {tuple(n.shape)}")
        if n.device != self.device:
            raise ValueError(f"n: expected a tensor on {self.device} (the array's device), got one on {n.device}")
        self._state, self._pink, self._weights = self._run(backends.UPDATE, [n.reshape(-1).to(torch.int32)],
                                                           update=self.updates)
        self.updates += 1

    def adam_step(self, grad: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, *, step: int,
                  lr_pulses: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        """One fused optimizer step (MODEL.md section 3, ``rramk.device.weak_reset_adam``).

        Updates the Adam moments ``exp_avg`` and ``exp_avg_sq`` (float32, the array's shape) in
        place from the straight-through gradient ``grad``, turns them into at most
        ``config.max_pulses`` pulses per synapse with learning rate ``lr_pulses`` (in pulses),
        Adam's ``betas`` and ``eps`` at the 1-based ``step``, and applies them as one update.
        """
        for name, tensor in (("grad", grad), ("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
            if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.float32:
                raise ValueError(f"{name}: expected a float32 tensor, got "
                                 f"{getattr(tensor, 'dtype', type(tensor).__name__)}")
            if tuple(tensor.shape) != self.shape:
                raise ValueError(f"{name}: expected shape {self.shape} (the array's shape), got {tuple(tensor.shape)}")
            if tensor.device != self.device:
                raise ValueError(f"{name}: expected a tensor on {self.device}, got one on {tensor.device}")
        for name, tensor in (("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq)):
            if not tensor.is_contiguous():
                raise ValueError(f"{name}: expected a contiguous tensor (it is updated in place)")
        scalars = weak_reset_adam.adam_scalars(step, lr_pulses, betas=betas, eps=eps,
                                               max_pulses=self.config.max_pulses, device=self.device)
        m_flat, v_flat = exp_avg.view(-1), exp_avg_sq.view(-1)
        m, v, self._state, self._pink, self._weights = self._run(
            backends.ADAM, [grad.reshape(-1), m_flat, v_flat], update=self.updates, scalars=scalars)
        if m is not m_flat:  # the kernel updates the moments in place
            m_flat.copy_(m)
            v_flat.copy_(v)
        self.updates += 1

    # ------------------------------------------------------------------ reads
    def weights(self) -> torch.Tensor:
        """The binary weights W = sign(R_BL - R_BLb) (+1 on a tie), float32 of the array's shape."""
        return self._weights.to(torch.float32).reshape(self.shape)

    def weights_int8(self) -> torch.Tensor:
        """The weights as the int8 (N,) tensor the last update wrote (no copy: do not modify it)."""
        return self._weights

    def log_resistance(self) -> torch.Tensor:
        """ln(R / 1 ohm) of every device, shape (2, *shape): [0] = BL, [1] = BLb."""
        return self._read_log_resistance().reshape((2,) + self.shape)

    def resistance(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(R_BL, R_BLb) in ohm, each of the array's shape (float64)."""
        r = torch.exp(self.log_resistance().to(torch.float64))
        return r[0], r[1]

    def pulse_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(t_BL, t_BLb): cumulative RESET pulses of each device, int32 of the array's shape."""
        t = weak_reset.unpack_device_state(self._state)[0].reshape((2,) + self.shape)
        return t[0], t[1]

    def rtn_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(s_BL, s_BLb): the RTN trap state (0 or 1) of each device, uint8 of the array's shape."""
        s = weak_reset.unpack_device_state(self._state)[1].reshape((2,) + self.shape)
        return s[0], s[1]

    def pink_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w_pink BL, w_pink BLb): the 1/f term of each device, of the array's shape."""
        p = self._pink.reshape((2,) + self.shape).clone()
        return p[0], p[1]

    def d2d_parameters(self) -> dict[str, torch.Tensor]:
        """Each device's parameters {m1, t_star, c1, m2, r0, ln_r0, a_rtn}, each of shape (2, *shape)."""
        index = torch.arange(self.numel, dtype=torch.int64, device=self.device)
        constants = weak_reset.model_constants(self.config, self.device, self.dtype)
        params = weak_reset.d2d_parameters(self.config, constants, weak_reset.d2d_words(self.seed, index),
                                           weak_reset.side_index(self.device))
        return {name: value.reshape((2,) + self.shape) for name, value in params.items()}

    @property
    def state_bytes_per_synapse(self) -> int:
        """Bytes of device state per synapse (pulse counts with RTN states, pink terms)."""
        return sum(t.element_size() * t.numel() for t in (self._state, self._pink)) // self.numel

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue bit for bit (tensors are copies)."""
        t, s = weak_reset.unpack_device_state(self._state)
        return {
            "format": STATE_FORMAT,
            "shape": list(self.shape),
            "seed": self.seed,
            "config": self.config.to_dict(),
            "updates": self.updates,
            "pulses_done": t.clone(),
            "rtn_state": s.clone(),
            "pink": self._pink.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()``; refuses one made with another shape, seed or config."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"state: expected a DeviceArray state_dict (format {STATE_FORMAT!r})")
        if tuple(state["shape"]) != self.shape:
            raise ValueError(f"state: made for shape {tuple(state['shape'])}, this array has shape {self.shape}")
        if state["seed"] != self.seed:
            raise ValueError(f"state: made with seed {state['seed']}, this array has seed {self.seed}")
        saved = HfOxWeakReset.from_dict(state["config"])
        if saved != self.config:
            differ = [k for k, v in saved.to_dict().items() if v != self.config.to_dict()[k]]
            raise ValueError(f"state: made with another device config (differs in {', '.join(differ)})")
        t = state["pulses_done"].to(device=self.device, dtype=torch.int32).reshape(2, self.numel)
        s = state["rtn_state"].to(device=self.device, dtype=torch.uint8).reshape(2, self.numel)
        self.updates = int(state["updates"])
        self._state = weak_reset.pack_device_state(t, s)
        self._pink = state["pink"].to(device=self.device, dtype=self.dtype).reshape(2, self.numel).clone()
        self._weights = self._read_weights()

    @classmethod
    def from_state_dict(cls, state: dict, device="cpu", backend: str = "auto") -> "DeviceArray":
        """A new array holding ``state`` (its shape, seed and config come from the state)."""
        array = cls(state["shape"], HfOxWeakReset.from_dict(state["config"]), seed=state["seed"], device=device,
                    backend=backend)
        array.load_state_dict(state)
        return array

    def __repr__(self) -> str:
        on = ",".join(self.config.imperfections) or "none"
        return (f"DeviceArray(shape={self.shape}, imperfections={on}, seed={self.seed}, device={self.device}, "
                f"backend={self.backend!r}, updates={self.updates})")
