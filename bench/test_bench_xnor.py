"""Speed of the binary (+-1 by +-1) products of the two published networks: torch against rramk.

Shapes: every layer of MODEL.md section 5 whose operands are both signs (MNIST ``fc2``; CIFAR-10 VGG
``conv2``..``conv6``, ``fc7``..``fc9``; not the first layers, which see real inputs), read off
``rramk.models`` on the meta device (:func:`binary_layers`) so the list cannot drift from the
networks, at the ``BATCHES`` of the size set. Convolutions are timed as convolutions on NCHW tensors,
not as im2col matmuls (that would time the unfold); ``tops`` = 2 M N K / time / 1e12, with
M = batch * H_out * W_out, N = C_out, K = C_in * 3 * 3 (FC: M = batch). Providers (``FC_PROVIDERS``,
``CONV_PROVIDERS``; operands made outside the timed call): torch (float, bf16, ``torch._int_mm``
where cuBLAS takes the shape) against rramk's XNOR kernel (input packed in the call, or both
operands beforehand), ``sign_matmul_tc`` and the ``binary_matmul`` dispatcher; on the CPU, rramk's
PyTorch reference and (convolutions of the VGG at CPU_CONV_WIDTH) its native C kernel, every provider on ``CPU_THREADS`` thread(s) (the bitwise reference is far slower
on two: reports/perf-notes.md, issue 18). Correctness, untimed: each output equals torch's float32
result exactly (``torch-bf16``: within ``BF16_TOLERANCE``), poisoned first on CUDA (:func:`poisoned_call`).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from conftest import SIZE
from rramk.nn import binary_products
from rramk import models
from rramk.nn import xnor as ref_xnor
from rramk.kernels.xnor_args import conv2d_output_size
from rramk.nn.layers import BinaryConv2d, BinaryLinear

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CPU_THREADS = 1
BF16_TOLERANCE = 2.0**-5  # torch-bf16: |out - exact| <= this * max(1, max |exact|)
POISON_BYTE = 0x7F  # int32 0x7F7F7F7F, float32 / bf16 ~3.4e38: never a product of K <= 2**24 signs

BATCHES = {"cpu": (1, 100), "gpu": (1, 100, 1000), "tiny": (1,)}  # tiny: gpu_check.sh's dry run
FC_PROVIDERS = {
    "cuda": ("torch-bf16", "torch-int8", "rramk-xnor-packs-input", "rramk-xnor-prepacked", "rramk-tensor-core",
             "rramk-binary-matmul-auto"),
    "cpu": ("torch-f32", "torch-bf16", "rramk-ref-xnor-packs-input", "rramk-ref-xnor-prepacked"),
}
CONV_PROVIDERS = {
    "cuda": ("torch-bf16", "rramk-xnor-conv2d"),
    # the C kernel at the widest popcount this CPU runs, and with AVX2's (what most CPUs run); the
    # PyTorch reference in the tiny size set only (far too slow at the CPU set's shapes)
    "cpu": ("torch-f32", "rramk-native-xnor-conv2d", "rramk-native-xnor-conv2d-avx2")
    + (("rramk-ref-xnor-conv2d",) if SIZE == "tiny" else ()),
}
CPU_CONV_WIDTH = 0.125  # the VGG width the CPU trains (reports/speed.md): the CPU size set's convolutions


# ----------------------------------------------------------------------------- shapes


@dataclass(frozen=True)
class BinaryLayer:
    """One layer of a published network whose input and weights are both signs."""

    model: str  # "mnist" or "cifar"
    name: str  # the layer's name in the model: "fc2", "conv3"
    in_channels: int  # K of a linear layer, input channels C of a convolution
    out_channels: int  # N of a linear layer, output channels O of a convolution
    kernel_size: tuple[int, int] | None = None  # (kh, kw); None for a linear layer
    padding: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (1, 1)
    image: tuple[int, int] | None = None  # (H, W) of a convolution's input

    @property
    def is_conv(self) -> bool:
        return self.kernel_size is not None

    def output_image(self) -> tuple[int, int]:
        return conv2d_output_size(*self.image, *self.kernel_size, self.padding, self.stride)

    def mnk(self, batch: int) -> tuple[int, int, int]:
        """(M, N, K) of the product as a matmul: M = batch (* H_out * W_out), K = C (* kh * kw)."""
        if not self.is_conv:
            return batch, self.out_channels, self.in_channels
        h_out, w_out = self.output_image()
        kh, kw = self.kernel_size
        return batch * h_out * w_out, self.out_channels, self.in_channels * kh * kw

    def case_id(self, batch: int) -> str:
        """A readable id: ``cifar-fc8192x1024-b100``, ``cifar-conv3-384x768-16px-b1``."""
        if not self.is_conv:
            return f"{self.model}-fc{self.in_channels}x{self.out_channels}-b{batch}"
        return f"{self.model}-{self.name}-{self.in_channels}x{self.out_channels}-{self.image[0]}px-b{batch}"


@functools.lru_cache(maxsize=None)
def binary_layers(width: float = 1.0) -> tuple[BinaryLayer, ...]:
    """Every binary-input layer of ``mnist_mlp()`` and ``cifar10_vgg(width)``, with its input size
    (the VGG's model name ``cifar``, or ``cifar-w0.125`` at another width).

    Traced on the meta device: no memory is allocated and no arithmetic done.
    """
    layers = []
    with torch.device("meta"):
        nets = (("mnist", models.mnist_mlp(), (1, models.MNIST_PIXELS)),
                ("cifar" if width == 1 else f"cifar-w{width:g}", models.cifar10_vgg(width),
                 (1, models.CIFAR10_CHANNELS, models.CIFAR10_SIZE, models.CIFAR10_SIZE)))
    for model_name, net, input_shape in nets:
        seen = []

        def hook(module, args, name=None):
            seen.append((name, module, tuple(args[0].shape)))

        handles = [m.register_forward_pre_hook(functools.partial(hook, name=n))
                   for n, m in net.named_modules() if isinstance(m, (BinaryLinear, BinaryConv2d))]
        net.eval()
        net(torch.empty(input_shape, device="meta"))
        for h in handles:
            h.remove()
        for name, module, shape in seen:
            if not module.binarize_input:
                continue  # real-valued input (pixels, image): a float product, not a binary one
            if isinstance(module, BinaryConv2d):
                layers.append(BinaryLayer(model_name, name, module.in_channels, module.out_channels,
                                          tuple(module.kernel_size), tuple(module.padding), tuple(module.stride),
                                          image=shape[2:]))
            else:
                layers.append(BinaryLayer(model_name, name, module.in_features, module.out_features))
    return tuple(layers)


def cases(size_set: str) -> dict[str, tuple[BinaryLayer, int]]:
    """{case id: (layer, batch)} of a size set: ``gpu`` every layer, ``cpu`` the FC layers and the
    convolutions of the VGG at CPU_CONV_WIDTH, batch 100."""
    found = {layer.case_id(batch): (layer, batch)
             for layer in binary_layers() if size_set == "gpu" or not layer.is_conv
             for batch in BATCHES[size_set]}
    if size_set == "cpu":
        found.update({layer.case_id(100): (layer, 100) for layer in binary_layers(CPU_CONV_WIDTH) if layer.is_conv})
    return found


# ----------------------------------------------------------------------------- operands, reference, check


def sign_operands(layer: BinaryLayer, batch: int, device, seed: int | None = None):
    """Random +-1 float32 operands (x, w): (batch, K) and (N, K), or (batch, C, H, W) and (O, C, kh, kw)."""
    if seed is None:
        seed = zlib.crc32(layer.case_id(batch).encode())
    g = torch.Generator(device=device).manual_seed(seed)
    if layer.is_conv:
        x_shape = (batch, layer.in_channels, *layer.image)
        w_shape = (layer.out_channels, layer.in_channels, *layer.kernel_size)
    else:
        x_shape, w_shape = (batch, layer.in_channels), (layer.out_channels, layer.in_channels)
    x, w = (torch.randint(0, 2, s, generator=g, device=device, dtype=torch.float32).mul_(2).sub_(1)
            for s in (x_shape, w_shape))
    return x, w


def reference_result(layer: BinaryLayer, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """torch's float32 result on the +-1 operands, as int32 (exact: integer sums far below 2**24)."""
    if not layer.is_conv:
        return (x @ w.T).to(torch.int32)
    out = F.conv2d(x, w, padding=layer.padding, stride=layer.stride)
    # cuDNN may pick FFT or Winograd algorithms, exact only up to rounding: round, after checking
    # that the rounding moves nothing by more than a quarter
    rounded = out.round()
    assert (out - rounded).abs().max().item() < 0.25, "float32 conv2d of +-1 operands is not near-integral"
    return rounded.to(torch.int32)


def check_output(out: torch.Tensor, ref: torch.Tensor, *, provider: str, case_id: str) -> None:
    """Assert that ``out`` equals the exact result ``ref`` (int32); bf16 output within its rounding."""
    assert tuple(out.shape) == tuple(ref.shape), (
        f"{provider} on {case_id}: output shape {tuple(out.shape)}, expected {tuple(ref.shape)}")
    if out.dtype == torch.bfloat16:
        tol = BF16_TOLERANCE * max(1.0, ref.abs().max().item())
        bad = (out.float() - ref.float()).abs() > tol
        how = f"by more than {tol:g} (bf16 rounding)"
    else:
        bad = out != ref.to(out.dtype)
        how = "(exact comparison)"
    if bad.any():
        idx = tuple(bad.nonzero()[0].tolist())
        raise AssertionError(f"{provider} on {case_id}: {int(bad.sum())} of {bad.numel()} entries differ from torch's "
                             f"float result {how}; first at {idx}: got {out[idx].item()}, expected {ref[idx].item()}")


def poisoned_call(fn, nbytes: int, device):
    """``fn()`` after filling ``nbytes`` of freed CUDA memory with POISON_BYTE (best effort).

    The caching allocator hands freed blocks to the next allocations of the call, so outputs
    made with ``torch.empty`` start as poison instead of a previous call's correct result. On
    the CPU (malloc) this is not possible: ``fn()`` as is.
    """
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        for size in (nbytes, 1 << 20, 1 << 19):  # the large pool, then the small pool (<= 1 MiB)
            torch.full((max(size, 1),), POISON_BYTE, dtype=torch.uint8, device=device)  # freed at once
    return fn()


# ----------------------------------------------------------------------------- providers


def providers(layer: BinaryLayer, device) -> tuple[str, ...]:
    kind = "cuda" if torch.device(device).type == "cuda" else "cpu"
    return (CONV_PROVIDERS if layer.is_conv else FC_PROVIDERS)[kind]


def skip_reason(provider: str, layer: BinaryLayer, batch: int) -> str | None:
    """Why ``provider`` cannot run this case, or None."""
    m, n, k = layer.mnk(batch)
    if provider == "torch-int8" and not (m > 16 and k % 8 == 0 and n % 8 == 0):
        return f"torch._int_mm needs M > 16 and K, N multiples of 8 (M={m}, N={n}, K={k})"
    if provider.startswith("rramk-native-"):
        from rramk.kernels import native

        if not native.available():
            return "the native kernels are not built here (no C compiler)"
        if provider.endswith("-avx2") and "avx2" not in native.cpu_features():
            return "this CPU has no AVX2"
    return None


def make_call(provider: str, layer: BinaryLayer, x: torch.Tensor, w: torch.Tensor):
    """(call, info): ``call()`` is the timed product of the +-1 operands x, w; everything that a
    network would do once (casts, packing the weights) is done here, outside it."""
    info = {}
    if provider in ("torch-f32", "torch-bf16"):
        dtype = torch.float32 if provider == "torch-f32" else torch.bfloat16
        xd, wd = x.to(dtype), w.to(dtype)
        if layer.is_conv:
            return (lambda: F.conv2d(xd, wd, padding=layer.padding, stride=layer.stride)), info
        return (lambda: F.linear(xd, wd)), info
    if provider == "torch-int8":
        xi, wi_t = x.to(torch.int8), w.to(torch.int8).t()  # (K, N) column-major, as cuBLASLt wants it
        return (lambda: torch._int_mm(xi, wi_t)), info
    if provider.startswith("rramk-native-"):  # the C kernel (kernels/native_xnor.c)
        from rramk.kernels import native_xnor

        popcount = "avx2" if provider.endswith("-avx2") else "auto"
        chosen = []
        native_xnor.xnor_conv2d(x, w, layer.padding, layer.stride, popcount=popcount, chosen=chosen)
        info["popcount"] = chosen[0]
        return (lambda: native_xnor.xnor_conv2d(x, w, layer.padding, layer.stride, popcount=popcount)), info
    if provider.startswith("rramk-ref-"):  # the PyTorch reference (torch bit operations)
        if layer.is_conv:
            return (lambda: ref_xnor.xnor_conv2d(x, w, padding=layer.padding, stride=layer.stride)), info
        w_packed, k = ref_xnor.pack_signs(w)
        if provider == "rramk-ref-xnor-prepacked":
            x_packed, _ = ref_xnor.pack_signs(x)
            return (lambda: ref_xnor.xnor_matmul(x_packed, w_packed, k)), info
        return (lambda: ref_xnor.xnor_matmul(ref_xnor.pack_signs(x)[0], w_packed, k)), info

    from rramk.kernels import xnor as kernels  # Triton: CUDA providers only

    xs, ws = x.to(torch.bfloat16), w.to(torch.bfloat16)  # +-1 activations and weights as a bf16 network holds them
    info["input_dtype"] = "bfloat16"
    if provider == "rramk-xnor-conv2d":
        return (lambda: kernels.xnor_conv2d(xs, ws, padding=layer.padding, stride=layer.stride)), info
    if provider in ("rramk-xnor-packs-input", "rramk-xnor-prepacked"):
        w_packed, k = kernels.pack_signs(ws)
        if provider == "rramk-xnor-prepacked":
            x_packed, _ = kernels.pack_signs(xs)
            info["input_dtype"] = "packed int32"
            return (lambda: kernels.xnor_matmul(x_packed, w_packed, k)), info
        return (lambda: kernels.xnor_matmul(kernels.pack_signs(xs)[0], w_packed, k)), info
    if provider == "rramk-tensor-core":
        return (lambda: kernels.sign_matmul_tc(xs, ws)), info
    if provider == "rramk-binary-matmul-auto":
        assert binary_products.MODE == "auto", f"rramk.nn.binary_products.MODE is {binary_products.MODE!r}"
        info["path"] = binary_products.choose_path(xs.shape[0], ws.shape[0], xs.shape[1], xs.device)
        return (lambda: binary_products.binary_matmul(xs, ws)), info
    raise ValueError(f"provider: unknown {provider!r}")


def output_bytes(layer: BinaryLayer, batch: int) -> int:
    """Bytes of the largest output (int32 / float32) of a case: what :func:`poisoned_call` fills."""
    m, n, _ = layer.mnk(batch)
    return 4 * m * n


# ----------------------------------------------------------------------------- benchmarks

CASES = cases(SIZE)
PARAMS = [pytest.param(case_id, provider, id=f"{provider}-{case_id}")
          for case_id, (layer, _) in CASES.items() for provider in providers(layer, DEVICE)]


@pytest.fixture(scope="module", autouse=True)
def cpu_threads():
    """CPU_THREADS torch threads for this file on the CPU (module docstring), restored after."""
    if DEVICE != "cpu":
        yield None
        return
    before = torch.get_num_threads()
    torch.set_num_threads(CPU_THREADS)
    yield CPU_THREADS
    torch.set_num_threads(before)


@pytest.mark.parametrize("case_id,provider", PARAMS)
def test_binary_matmul(record, cpu_threads, case_id, provider):
    layer, batch = CASES[case_id]
    reason = skip_reason(provider, layer, batch)
    if reason:
        pytest.skip(reason)
    x, w = sign_operands(layer, batch, DEVICE)
    ref = reference_result(layer, x, w)
    call, info = make_call(provider, layer, x, w)
    check_output(poisoned_call(call, output_bytes(layer, batch), DEVICE), ref, provider=provider, case_id=case_id)
    del ref
    m, n, k = layer.mnk(batch)
    if cpu_threads is not None:
        info["torch_threads"] = cpu_threads
    record(call, device=DEVICE, derived={"tops": 2 * m * n * k / 1e12}, warmup=1,
           operation="binary matmul", provider=provider, shape=case_id, layer=f"{layer.model}.{layer.name}",
           layer_kind="conv" if layer.is_conv else "fc", batch=batch, m=m, n=n, k=k, **info)
