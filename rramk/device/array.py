"""DeviceArray: an array of 2T2R synapses (pairs of HfOx devices) under weak-RESET pulses.

The state is what ``rramk.device.weak_reset`` describes: 16 bytes per synapse (pulse counts, RTN
states, SET cycles and pink terms of both devices), plus the weights read last, kept as a cache
(1 byte). ``refresh`` SETs the synapses that can no longer move (``rramk.device.refresh``).
Every operation runs through the one dispatcher, ``rramk.device.backends``: the eager reference,
``torch.compile`` or the fused C kernels on CPUs, or the fused Triton kernels on GPUs, all
computing the same bits.

Memory: an update writes the state in place (the fused kernel on a GPU; chunk by chunk on the
other backends), and every per-synapse computation runs over chunks of
``backends.REFERENCE_CHUNK`` synapses, so an operation needs, beyond the array and what it
returns, at most 1 byte per synapse (the new weights of an update) plus one chunk's
temporaries (reports/memory.md, ``bench/memory_per_synapse.py``). Results are new tensors
(``weights_int8`` excepted): the array's state is never observable through them.
"""

from __future__ import annotations

import math

import torch

from . import backends, streams, model_tables, weak_reset, weak_reset_adam
from . import refresh as refresh_policy
from .config import DeviceFamily, HfOxWeakReset
from .families import device_from_dict

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
        backend: "auto", "reference", "compiled", "native" or "triton" (``rramk.device.backends``).
        dtype: float type of the resistance arithmetic (float32; float64 with "reference").
    """

    def __init__(self, shape, config: DeviceFamily | None = None, seed: int = 0, device="cpu",
                 backend: str = "auto", dtype: torch.dtype = torch.float32):
        self.shape = _check_shape(shape)
        if config is None:
            config = HfOxWeakReset()
        if not isinstance(config, DeviceFamily):
            raise TypeError(f"config: expected a device family (rramk.HfOxWeakReset, rramk.device.soft_bounds.SoftBounds), "
                            f"got {type(config).__name__}")
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
        self._cycles_on = False  # True after the first SET: the operations then read the SET cycles
        self._pulse_bound = 0  # at least the largest pulse count t of any device (t <= streams.PULSES_MASK)
        self._retired_pulses = torch.zeros((), dtype=torch.int64, device=self.device)  # t of devices at their SETs
        self._failed_rewrites = torch.zeros((), dtype=torch.int64, device=self.device)
        self._retried_rewrites = torch.zeros((), dtype=torch.int64, device=self.device)
        self._weights = self._read_weights()

    # ------------------------------------------------------------------ backends
    def _run(self, op: backends.Operation, flat: list[torch.Tensor], **kwargs):
        return backends.run(op, self.backend, flat, self._state, self._pink, config=self.config, seed=self.seed,
                            cycles=self._cycles_on, **kwargs)

    def _chunks(self):
        """Slices of at most ``backends.REFERENCE_CHUNK`` synapses covering the array."""
        return [slice(first, first + backends.REFERENCE_CHUNK) for first in range(0, self.numel, backends.REFERENCE_CHUNK)]

    def _largest_pulse_count(self) -> int:
        return max(int((self._state[:, part] & streams.PULSES_MASK).max()) for part in self._chunks())

    def _reserve_pulses(self, most: int) -> None:
        """Refuse an update of up to ``most`` pulses per device if it could carry a device past the
        largest count its state word holds (``streams.PULSES_MASK`` pulses since its last SET)."""
        if self._pulse_bound + most > streams.PULSES_MASK:
            self._pulse_bound = self._largest_pulse_count()
            if self._pulse_bound + most > streams.PULSES_MASK:
                raise OverflowError(
                    f"n: a device has had {self._pulse_bound} RESET pulses since its last SET and this update may "
                    f"add {most}: more than the {streams.PULSES_MASK} its state word holds (rramk.device.streams); "
                    "refresh the array first (DeviceArray.refresh, WeakResetAdam(refresh=...))")
        self._pulse_bound += most

    def _read_log_resistance(self) -> torch.Tensor:
        return self._run(backends.READ, [], updates=self.updates)[0]

    def _read_weights(self) -> torch.Tensor:
        return self._run(backends.READ_WEIGHTS, [], updates=self.updates)[0]

    # ------------------------------------------------------------------ updates
    def apply_pulses(self, n: torch.Tensor) -> None:
        """Apply one update: n > 0 RESET pulses to BL, n < 0 |n| pulses to BLb, 0 none.

        ``n`` is an integer tensor of the array's shape on the array's device; a device holds at
        most 2**20 - 1 pulses since its last SET (``streams.PULSES_MASK``; an update that could pass
        it raises OverflowError).
        Every device's RTN term is redrawn, pulsed or not. The state is updated in place; ``n``
        is read as it is when int32 and contiguous, else converted (a copy of 4 bytes per
        synapse). The weights are a new tensor (a ``weights_int8()`` taken before stays as it was).
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
        low, high = torch.aminmax(n)  # no temporary of the array's size (n.abs() would be one)
        self._reserve_pulses(max(int(high), -int(low)))
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
        self._reserve_pulses(self.config.max_pulses)
        # every backend writes the moments and the state in place (backends.ADAM.in_place)
        _, _, self._state, self._pink, self._weights = self._run(
            backends.ADAM, [grad.reshape(-1), exp_avg.view(-1), exp_avg_sq.view(-1)], update=self.updates,
            scalars=scalars)
        self.updates += 1

    def refresh(self, condition: str = "past_t_star", *, margin: float = 0.0, limit: int = 0,
                max_write_pulses: int = 1023, retries: int = 0, read_noise: float = 0.0,
                verify_margin: float = 0.0, above: float = 0.0, check_noise: float = 0.0) -> int:
        """SET the synapses whose ``condition`` holds and re-write the weights they hold; returns how many.

        ``condition``, ``margin`` and ``limit``: ``rramk.device.refresh`` (``past_t_star``: either device
        past its t_star; ``window``: both past (1 - ``margin``) t_star; ``pulses``: either device with
        ``limit`` pulses since its last SET; ``resistance``: either device reads ``above`` ohm or more, each read
        with noise of sd ``check_noise`` of ln R, ``refresh_policy.resistance_due``). Each synapse SET starts its next cycle
        (``weak_reset.weak_reset_set``: c1 and R0 drawn afresh, t = 0, no pink history, trap state 0)
        and its weight is re-written with at most ``max_write_pulses`` pulses; the others keep every
        bit. A synapse whose re-write does not read the weight held is SET and re-written again, up to
        ``retries`` times (each retry a new cycle); ``failed_rewrites`` counts those still wrong after the
        last, ``retried_rewrites`` the retries. ``read_noise`` > 0: the verify reads carry white noise of
        that sd of ln R (``weak_reset.noisy_write_pulses``) and may stop a re-write early; ``verify_margin``:
        how far (ln R) a re-written device must read past its partner. Not an update: ``updates`` and the
        RTN draws of the next update stay as they were. The SET runs the reference on the synapses it SETs, on every backend;
        the weights are a new tensor.
        """
        _check_refresh_arguments(condition, margin, limit, max_write_pulses, retries, read_noise, verify_margin)
        _check_family_refresh(self.config, condition, above, check_noise)
        if condition == "pulses":
            # the counters only: no kernel, the same on every backend; chunk by chunk, no temporary of the array's size
            due = torch.empty(self.numel, dtype=torch.bool, device=self.device)
            backends.map_chunks(lambda words: (refresh_policy.pulses_due(words, limit),), [due], self._state)
        elif condition == "resistance":  # the reads every backend gives to the bit, then their noise
            due = refresh_policy.resistance_due(self.log_resistance().reshape(2, -1), seed=self.seed,
                                                updates=self.updates, above=float(above),
                                                check_noise=float(check_noise))
        else:
            due = self._run(backends.DUE, [], condition=condition, margin=float(margin))[0]
        index = due.nonzero().squeeze(1)
        if index.numel() == 0:
            return 0
        written = self._weights.clone()
        todo, held = index, self._weights[index]
        for attempt in range(retries + 1):
            state, pink = self._state[:, todo], self._pink[:, todo]
            if int(weak_reset.unpack_cycle(state[streams.SIDE_BL]).max()) >= streams.MAX_CYCLE:
                raise OverflowError(f"refresh: a synapse has had {streams.MAX_CYCLE} SETs, the most its state word "
                                    "holds (rramk.device.streams)")
            new_state, new_pink, weights, _ = backends.run(
                backends.SET, "reference", [todo, held], state, pink, config=self.config, seed=self.seed,
                updates=self.updates, max_write_pulses=max_write_pulses, read_noise=float(read_noise),
                verify_margin=float(verify_margin))
            self._retired_pulses += weak_reset.unpack_device_state(state)[0].sum()
            self._state[:, todo] = new_state
            self._pink[:, todo] = new_pink
            written[todo] = weights
            failed = weights != held
            if attempt == retries or not bool(failed.any()):
                break
            self._retried_rewrites += failed.sum()
            todo, held = todo[failed], held[failed]
        self._failed_rewrites += failed.sum()
        self._weights = written
        self._pulse_bound = max(self._pulse_bound, max_write_pulses)
        self._cycles_on = True
        return int(index.numel())

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
        r = self._run(backends.READ_RESISTANCE, [], updates=self.updates)[0].reshape((2,) + self.shape)
        return r[0], r[1]

    def _unpacked(self, which: int, dtype: torch.dtype) -> torch.Tensor:
        """Item ``which`` of ``weak_reset.unpack_device_state`` (0: t, 1: s), (2, *shape), chunk by chunk."""
        out = torch.empty((2, self.numel), dtype=dtype, device=self.device)
        backends.map_chunks(lambda words: weak_reset.unpack_device_state(words)[which:which + 1], [out], self._state)
        return out.reshape((2,) + self.shape)

    def pulse_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(t_BL, t_BLb): cumulative RESET pulses of each device, int32 of the array's shape."""
        t = self._unpacked(0, torch.int32)
        return t[0], t[1]

    def rtn_states(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(s_BL, s_BLb): the RTN trap state (0 or 1) of each device, uint8 of the array's shape."""
        s = self._unpacked(1, torch.uint8)
        return s[0], s[1]

    def set_counts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(k_BL, k_BLb): SET operations each device has had (its SET cycle), int32 of the array's shape."""
        k = torch.empty((2, self.numel), dtype=torch.int32, device=self.device)
        for part in self._chunks():
            k[:, part] = weak_reset.unpack_cycle(self._state[:, part])
        k = k.reshape((2,) + self.shape)
        return k[0], k[1]

    def reset_pulses(self) -> int:
        """RESET pulses the array's devices have had in all, before and since their last SETs (endurance)."""
        since = sum(int((self._state[:, part] & streams.PULSES_MASK).sum()) for part in self._chunks())
        return int(self._retired_pulses) + since

    @property
    def failed_rewrites(self) -> int:
        """Refreshes whose re-write (after its retries) ended at ``max_write_pulses`` without reading the weight held."""
        return int(self._failed_rewrites)

    @property
    def retried_rewrites(self) -> int:
        """SETs that retried a failed re-write (``refresh(retries=...)``)."""
        return int(self._retried_rewrites)

    def pink_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w_pink BL, w_pink BLb): the 1/f term of each device, of the array's shape."""
        p = self._pink.reshape((2,) + self.shape).clone()
        return p[0], p[1]

    def wear(self) -> tuple[int, int]:
        """(the sum of every device's pulse count t since its last SET, how many devices have t >= their
        own t_star (soft bounds: t >= 1/rate, the time constant; bidirectional: 0)), chunk by chunk: no
        tensor of the array's size (what WeakResetAdam reports per epoch)."""
        constants = model_tables.model_constants(self.config, self.device, self.dtype)
        side = weak_reset.side_index(self.device)
        total, past = 0, 0
        for part in self._chunks():
            t = self._state[:, part] & streams.PULSES_MASK
            index = weak_reset.synapse_index(part.start, t.shape[1], self.device)
            # t_star is a cycle-0 parameter (a SET draws c1 and R0 only): no cycle words needed
            params = weak_reset.d2d_parameters(self.config, constants, weak_reset.d2d_words(self.seed, index), side)
            total += int(t.sum(dtype=torch.int64))
            if self.config.FAMILY == streams.FAMILY_BIDIRECTIONAL:  # no saturation onset: only the pulse count
                continue
            if self.config.FAMILY == streams.FAMILY_SOFT_BOUNDS:  # past the time constant 1/rate: t * rate >= 1
                past += int((t.to(params["m1"].dtype) * params["m1"] >= 1.0).sum())
            else:
                past += int((t.to(params["t_star"].dtype) >= params["t_star"]).sum())  # t < 2**20: exact in float32
        return total, past

    def d2d_parameters(self, *names: str) -> dict[str, torch.Tensor]:
        """Each device's parameters {m1, t_star, c1, m2, r0, ln_r0, a_rtn} (soft bounds: {rate, g_max, g0,
        a_rtn}), each of shape (2, *shape) (c1 and R0, g0, those of the device's present SET cycle).

        ``names``: only these parameters (e.g. ``d2d_parameters("t_star")``), at 2 floats per
        synapse each, where all seven take 14.
        """
        slots = self.config.TABLE_NAMES
        unknown = [name for name in names if name not in slots]
        if unknown:
            raise ValueError(f"names: expected some of {', '.join(slots)}, got {', '.join(unknown)}")
        names = names or tuple(slots)
        constants = model_tables.model_constants(self.config, self.device, self.dtype)
        side = weak_reset.side_index(self.device)
        out = {name: torch.empty((2, self.numel), dtype=self.dtype, device=self.device) for name in names}
        for first in range(0, self.numel, backends.REFERENCE_CHUNK):
            index = weak_reset.synapse_index(first, min(backends.REFERENCE_CHUNK, self.numel - first), self.device)
            words = weak_reset.d2d_words(self.seed, index)
            if self._cycles_on:  # c1 and R0 of each synapse's SET cycle
                cycle = weak_reset.unpack_cycle(self._state[streams.SIDE_BL, first:first + index.shape[0]])
                words = words, weak_reset.d2d_words(self.seed, index, cycle)
            else:
                words = words, None
            params = weak_reset.d2d_parameters(self.config, constants, words[0], side, words[1])
            for name, value in out.items():
                value[:, first:first + index.shape[0]] = params[slots[name]]
            del params
        return {name: value.reshape((2,) + self.shape) for name, value in out.items()}

    @property
    def state_bytes_per_synapse(self) -> int:
        """Bytes of device state per synapse (pulse counts with RTN states, pink terms)."""
        return sum(t.element_size() * t.numel() for t in (self._state, self._pink)) // self.numel

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue bit for bit (tensors are copies)."""
        t = torch.empty((2, self.numel), dtype=torch.int32, device=self.device)
        s = torch.empty((2, self.numel), dtype=torch.uint8, device=self.device)
        backends.map_chunks(weak_reset.unpack_device_state, [t, s], self._state)
        return {
            "format": STATE_FORMAT,
            "shape": list(self.shape),
            "seed": self.seed,
            "config": self.config.to_dict(),
            "updates": self.updates,
            "pulses_done": t,
            "rtn_state": s,
            "pink": self._pink.clone(),
            **(self._cycle_state() if self._cycles_on else {}),
        }

    def _cycle_state(self) -> dict:
        """What a refreshed array adds to its state_dict: the synapses' SET cycles and the endurance counts."""
        cycles = torch.empty(self.numel, dtype=torch.int16, device=self.device)
        for part in self._chunks():
            cycles[part] = weak_reset.unpack_cycle(self._state[streams.SIDE_BL, part])
        return {"cycles": cycles, "retired_pulses": int(self._retired_pulses),
                "failed_rewrites": int(self._failed_rewrites), "retried_rewrites": int(self._retried_rewrites)}

    def load_state_dict(self, state: dict) -> None:
        """Restore a ``state_dict()``; refuses one made with another shape, seed or config."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"state: expected a DeviceArray state_dict (format {STATE_FORMAT!r})")
        if tuple(state["shape"]) != self.shape:
            raise ValueError(f"state: made for shape {tuple(state['shape'])}, this array has shape {self.shape}")
        if state["seed"] != self.seed:
            raise ValueError(f"state: made with seed {state['seed']}, this array has seed {self.seed}")
        saved = device_from_dict(state["config"])
        if saved != self.config:
            differ = [k for k, v in saved.to_dict().items() if v != self.config.to_dict().get(k)]
            raise ValueError(f"state: made with another device config (differs in {', '.join(differ)})")
        updates = int(state["updates"])
        t, s, pink = (state[key].reshape(2, self.numel) for key in ("pulses_done", "rtn_state", "pink"))
        cycles = state.get("cycles", torch.zeros(1, dtype=torch.int16)).reshape(1, -1).expand(2, self.numel)
        # into the array's own tensors, chunk by chunk (from any device): no second copy of the state
        backends.map_chunks(
            lambda t, s, k: (weak_reset.pack_device_state(t.to(device=self.device, dtype=torch.int32),
                                                          s.to(device=self.device, dtype=torch.uint8),
                                                          k.to(device=self.device)),),
            [self._state], t, s, cycles)
        self._cycles_on = "cycles" in state
        self._retired_pulses.fill_(int(state.get("retired_pulses", 0)))
        self._failed_rewrites.fill_(int(state.get("failed_rewrites", 0)))
        self._retried_rewrites.fill_(int(state.get("retried_rewrites", 0)))
        self._pulse_bound = self._largest_pulse_count()
        backends.map_chunks(lambda p: (p.to(device=self.device, dtype=self.dtype),), [self._pink], pink)
        self.updates = updates
        self._weights = self._read_weights()

    @classmethod
    def from_state_dict(cls, state: dict, device="cpu", backend: str = "auto") -> "DeviceArray":
        """A new array holding ``state`` (its shape, seed and config come from the state)."""
        array = cls(state["shape"], device_from_dict(state["config"]), seed=state["seed"], device=device,
                    backend=backend)
        array.load_state_dict(state)
        return array

    def __repr__(self) -> str:
        on = ",".join(self.config.imperfections) or "none"
        return (f"DeviceArray(shape={self.shape}, imperfections={on}, seed={self.seed}, device={self.device}, "
                f"backend={self.backend!r}, updates={self.updates})")


def _check_family_refresh(config, condition: str, above: float, check_noise: float) -> None:
    """The refresh conditions a device's family allows (t_star and ln R: HfOx only; bidirectional: none)."""
    if config.FAMILY == streams.FAMILY_BIDIRECTIONAL:
        raise ValueError("refresh: a Bidirectional device moves both ways and needs no refresh (its BLb is a fixed "
                         "reference, and a SET would not re-write its displacement)")
    if condition == "resistance" and not (above > 0 and check_noise >= 0):
        raise ValueError(f"above: expected a resistance > 0 ohm and check_noise >= 0, got {above!r}, {check_noise!r}")
    if condition == "resistance" and config.FAMILY != streams.FAMILY_TWO_SLOPES:
        raise ValueError(f"condition: 'resistance' compares ln R with a threshold in ohm, and a "
                         f"{type(config).__name__} device reads another quantity; use condition='pulses'")
    if condition not in ("pulses", "resistance") and config.FAMILY != streams.FAMILY_TWO_SLOPES:
        raise ValueError(f"condition: {condition!r} reads each device's t_star, which a {type(config).__name__} "
                         "device has not; use condition='pulses' with a limit (e.g. a few times 1/rate)")


def _check_refresh_arguments(condition, margin, limit, max_write_pulses, retries, read_noise, verify_margin) -> None:
    """``DeviceArray.refresh``'s arguments, each refused by name with what was expected."""
    if not (isinstance(retries, int) and retries >= 0):
        raise ValueError(f"retries: expected an integer >= 0 (SETs after a failed re-write), got {retries!r}")
    if not (isinstance(max_write_pulses, int) and 0 <= max_write_pulses <= streams.PULSES_MASK):
        raise ValueError(f"max_write_pulses: expected an integer in [0, {streams.PULSES_MASK}], got {max_write_pulses!r}")
    if not read_noise >= 0:
        raise ValueError(f"read_noise: expected the sd of ln R of a verify read, >= 0, got {read_noise!r}")
    if not verify_margin >= 0:
        raise ValueError(f"verify_margin: expected ln R >= 0 by which a re-write must pass, got {verify_margin!r}")
    if condition not in refresh_policy.CONDITIONS:
        raise ValueError(f"condition: expected one of {', '.join(refresh_policy.CONDITIONS)}, got {condition!r}")
    if not 0 <= margin < 1:
        raise ValueError(f"margin: expected a fraction in [0, 1) of the fast window, got {margin!r}")
    if condition == "pulses" and not (isinstance(limit, int) and 1 <= limit <= streams.PULSES_MASK):
        raise ValueError(f"limit: expected an integer in [1, {streams.PULSES_MASK}] (pulses since the last "
                         f"SET) for the 'pulses' condition, got {limit!r}")
