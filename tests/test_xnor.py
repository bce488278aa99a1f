"""Binary matrix products: packing, XNOR GEMM, XNOR convolution, int8 tensor cores (kernel and reference).

Every product of signs is an integer, so every path must equal torch's float product of the
+1/-1 tensors exactly (torch.equal). The same file runs on a GPU (CUDA tensors, compiled kernels)
and on the CPU (Triton's interpreter, small shapes).
"""

import pytest
import torch
import torch.nn.functional as F
from triton.runtime.jit import JITFunction

import rramk.kernels._launch as launch
import rramk.kernels.xnor as kernels
import rramk.nn.xnor as reference

IMPLEMENTATIONS = {"reference": reference, "kernel": kernels}

# (M, N, K): ordinary and odd shapes; K around the 32-bit word boundaries
MATMUL_SHAPES = {
    "M1-N1-K1": (1, 1, 1),
    "M1-N7-K31": (1, 7, 31),
    "M3-N5-K32": (3, 5, 32),
    "M17-N3-K33": (17, 3, 33),
    "M4-N9-K64": (4, 9, 64),
    "M5-N19-K100": (5, 19, 100),
    "M2-N3-K3000": (2, 3, 3000),  # MNIST hidden width: many words
}

# (N, C, H, W, O, kh, kw, padding, stride)
CONV_SHAPES = {
    "cifar-input-C3-3x37x129": (1, 3, 37, 129, 5, 3, 3, 1, 1),
    "C5-k3-pad1": (2, 5, 7, 9, 4, 3, 3, 1, 1),
    "C5-k3-pad1-stride2": (2, 5, 7, 9, 4, 3, 3, 1, 2),
    "C37-k3-pad1-stride2": (1, 37, 6, 5, 3, 3, 3, 1, 2),
    "C64-k3-pad1": (1, 64, 4, 5, 3, 3, 3, 1, 1),
    "C5-k5-pad2": (1, 5, 6, 7, 2, 5, 5, 2, 1),
    "C3-k2x3-pad1x2-stride2x1": (1, 3, 5, 6, 3, 2, 3, (1, 2), (2, 1)),
    "C4-k3-pad0": (2, 4, 5, 6, 3, 3, 3, 0, 1),
    "C33-k1-pad0": (1, 33, 3, 4, 5, 1, 1, 0, 1),
}


def random_signs(shape, seed, device, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, shape, generator=generator).to(dtype) * 2 - 1
    return signs.to(device)


def mismatch_message(actual, expected, what):
    """The failure message of an exact comparison: shape, first mismatching index, both values."""
    if actual.shape != expected.shape:
        return f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    if actual.dtype != expected.dtype:
        return f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
    differ = (actual != expected).nonzero()
    if len(differ) == 0:
        return f"{what}: equal"
    first = tuple(int(i) for i in differ[0])
    return (f"{what} (shape {tuple(actual.shape)}): {len(differ)} mismatches, first at index {first}: "
            f"got {actual[first].item()}, expected {expected[first].item()}")


def assert_exactly_equal(actual, expected, what):
    assert torch.equal(actual, expected), mismatch_message(actual, expected, what)


def test_failure_message_names_shape_and_first_mismatch():
    expected = torch.zeros(2, 3, dtype=torch.int32)
    actual = expected.clone()
    actual[1, 2] = 7
    actual[1, 1] = 5
    message = mismatch_message(actual, expected, "xnor_matmul M2-N3")
    assert "shape (2, 3)" in message and "first at index (1, 1)" in message and "got 5, expected 0" in message
    with pytest.raises(AssertionError, match=r"first at index \(1, 1\)"):
        assert_exactly_equal(actual, expected, "xnor_matmul M2-N3")


# --------------------------------------------------------------------------- pack_signs


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_pack_signs_bit_layout_by_hand(impl, device):
    pack = IMPLEMENTATIONS[impl].pack_signs
    packed, k = pack(torch.tensor([1.0, -1.0, 1.0], device=device))
    assert k == 3
    assert packed.dtype == torch.int32 and packed.tolist() == [0b101]  # LSB first, padding bits 0

    # 33 signs: word 0 all ones (reads -1 as int32), word 1 holds element 32 in its bit 0
    packed, k = pack(torch.ones(33, device=device))
    assert (k, packed.tolist()) == (33, [-1, 1])
    only_31 = -torch.ones(40, device=device)
    only_31[31] = 1.0
    only_31[33] = 1.0
    assert pack(only_31)[0].tolist() == [-(2**31), 0b10]  # bit 31 is the int32 sign bit

    # ties read +1 (0 and -0.0), NaN reads -1, as rramk.nn.binarize
    packed, _ = pack(torch.tensor([0.0, -0.0, float("nan"), -2.5, 3.0], device=device))
    assert packed.tolist() == [0b10011]


@pytest.mark.parametrize("k", [1, 31, 32, 33, 64, 100], ids=lambda k: f"K{k}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int8], ids=str)
def test_pack_signs_kernel_equals_reference(k, dtype, device, seed):
    x = torch.randn(3, k, generator=torch.Generator().manual_seed(seed)).to(dtype).to(device)
    expected, k_ref = reference.pack_signs(x)
    actual, k_kernel = kernels.pack_signs(x)
    assert k_kernel == k_ref == k
    assert_exactly_equal(actual, expected, f"pack_signs (3, {k}) {dtype}")
    assert_exactly_equal(reference.unpack_signs(actual, k), reference.sign_pm1(x.float()), "unpack(pack(x))")


@pytest.mark.parametrize("dim", [0, 1, -1], ids=lambda d: f"dim{d}")
def test_pack_signs_along_any_dim(dim, device, seed):
    x = random_signs((37, 5, 3), seed, device)
    expected, k = reference.pack_signs(x, dim=dim)
    actual, k_kernel = kernels.pack_signs(x, dim=dim)
    assert k_kernel == k == x.shape[dim]
    assert actual.is_contiguous() and actual.shape[dim] == -(-k // 32)
    assert_exactly_equal(actual, expected, f"pack_signs (37, 5, 3) dim={dim}")
    # non-contiguous input: packed through a copy
    assert_exactly_equal(kernels.pack_signs(x.transpose(0, 2), dim=dim)[0],
                         reference.pack_signs(x.transpose(0, 2), dim=dim)[0], "pack_signs of a transposed x")
    assert torch.equal(reference.unpack_signs(expected, k, dim=dim), x)


# --------------------------------------------------------------------------- xnor_matmul


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", MATMUL_SHAPES.values(), ids=MATMUL_SHAPES.keys())
def test_xnor_matmul_equals_float_product(shape, impl, device, seed):
    m, n, k = shape
    a, b = random_signs((m, k), seed, device), random_signs((n, k), seed + 1, device)
    expected = (a.double() @ b.double().T).to(torch.int32)
    ops = IMPLEMENTATIONS[impl]
    a_packed, k_a = ops.pack_signs(a)
    b_packed, _ = ops.pack_signs(b)
    assert_exactly_equal(ops.xnor_matmul(a_packed, b_packed, k_a), expected, f"{impl} xnor_matmul (M, N, K)={shape}")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("k", [1, 33, 100], ids=lambda k: f"K{k}")
def test_xnor_matmul_ignores_padding_bits(k, impl, device, seed):
    a, b = random_signs((3, k), seed, device), random_signs((5, k), seed + 1, device)
    a_packed, _ = reference.pack_signs(a)
    b_packed, _ = reference.pack_signs(b)
    # garbage in the padding bits of the last word: a all ones, b alternating
    padding = ~((1 << (k % 32)) - 1) if k % 32 else 0
    a_packed[:, -1] |= padding
    b_packed[:, -1] |= padding & 0x55555555
    out = IMPLEMENTATIONS[impl].xnor_matmul(a_packed, b_packed, k)
    assert_exactly_equal(out, (a @ b.T).to(torch.int32), f"{impl} xnor_matmul with padding garbage K={k}")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("m,n,k", [(0, 3, 40), (2, 0, 40), (2, 3, 0)], ids=["M0", "N0", "K0"])
def test_xnor_matmul_empty(m, n, k, impl, device):
    ops = IMPLEMENTATIONS[impl]
    a_packed, _ = ops.pack_signs(torch.ones(m, k, device=device))
    b_packed, _ = ops.pack_signs(torch.ones(n, k, device=device))
    assert_exactly_equal(ops.xnor_matmul(a_packed, b_packed, k), torch.zeros(m, n, dtype=torch.int32, device=device),
                         f"{impl} xnor_matmul M={m} N={n} K={k}")


# --------------------------------------------------------------------------- xnor_conv2d


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("shape", CONV_SHAPES.values(), ids=CONV_SHAPES.keys())
def test_xnor_conv2d_equals_conv2d_with_zero_padding(shape, impl, device, seed):
    n, c, h, w, o, kh, kw, padding, stride = shape
    x, weight = random_signs((n, c, h, w), seed, device), random_signs((o, c, kh, kw), seed + 1, device)
    expected = F.conv2d(x.double(), weight.double(), padding=padding, stride=stride).to(torch.int32)
    actual = IMPLEMENTATIONS[impl].xnor_conv2d(x, weight, padding, stride)
    assert_exactly_equal(actual, expected, f"{impl} xnor_conv2d {shape}")


def test_xnor_conv2d_takes_signs_of_any_floats(device, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 5, 6, 7, generator=generator).to(device)
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, float("nan")])
    weight = torch.randn(3, 5, 3, 3, generator=generator).to(device)
    expected = F.conv2d(reference.sign_pm1(x), reference.sign_pm1(weight), padding=1).to(torch.int32)
    assert_exactly_equal(kernels.xnor_conv2d(x, weight, 1), expected, "kernel xnor_conv2d of raw floats")
    assert_exactly_equal(reference.xnor_conv2d(x, weight, 1), expected, "reference xnor_conv2d of raw floats")


# --------------------------------------------------------------------------- tensor cores


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int8], ids=str)
@pytest.mark.parametrize("shape", MATMUL_SHAPES.values(), ids=MATMUL_SHAPES.keys())
def test_sign_matmul_tc_equals_float_product(shape, dtype, device, seed):
    m, n, k = shape
    a, b = random_signs((m, k), seed, device, dtype), random_signs((n, k), seed + 1, device, dtype)
    expected = (a.double() @ b.double().T).to(torch.int32)
    assert_exactly_equal(kernels.sign_matmul_tc(a, b), expected, f"sign_matmul_tc (M, N, K)={shape} {dtype}")


# --------------------------------------------------------------------------- input validation


def other_device(device):
    """A device no kernel may mix with ``device``: the CPU next to CUDA, else the meta device."""
    return torch.device("cpu") if device.type == "cuda" else torch.device("meta")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_xnor_matmul_rejects_bad_input(impl, device):
    xnor_matmul = IMPLEMENTATIONS[impl].xnor_matmul
    a = torch.zeros(3, 2, dtype=torch.int32, device=device)
    b = torch.zeros(5, 2, dtype=torch.int32, device=device)
    with pytest.raises(TypeError, match="^a_packed: expected dtype torch.int32"):
        xnor_matmul(a.float(), b, 40)
    with pytest.raises(ValueError, match="^b_packed: expected 2 words per row"):
        xnor_matmul(a, torch.zeros(5, 3, dtype=torch.int32, device=device), 40)
    with pytest.raises(ValueError, match="^k: 65 signs take 3 words"):
        xnor_matmul(a, b, 65)
    with pytest.raises(ValueError, match="^b_packed: expected a 2-D tensor"):
        xnor_matmul(a, b[None], 40)


def test_kernel_launchers_reject_bad_layout_and_device(device):
    a = torch.zeros(3, 2, dtype=torch.int32, device=device)
    b_transposed = torch.zeros(2, 5, dtype=torch.int32, device=device).T
    with pytest.raises(ValueError, match="^b_packed: expected a contiguous tensor"):
        kernels.xnor_matmul(a, b_transposed, 40)
    with pytest.raises((ValueError, RuntimeError), match="^b_packed: "):
        kernels.xnor_matmul(a, torch.zeros(5, 2, dtype=torch.int32, device=other_device(device)), 40)

    signs = torch.ones(3, 40, device=device)
    with pytest.raises(TypeError, match="^a: expected a float16/bfloat16/float32/float64 or int8"):
        kernels.sign_matmul_tc(signs.int(), signs)
    with pytest.raises(ValueError, match="^b: expected a contiguous"):
        kernels.sign_matmul_tc(signs, torch.ones(40, 3, device=device).T)
    with pytest.raises(ValueError, match="^b: expected 40 columns"):
        kernels.sign_matmul_tc(signs, torch.ones(3, 41, device=device))
    with pytest.raises((ValueError, RuntimeError), match="^b: "):
        kernels.sign_matmul_tc(signs, torch.ones(3, 40, device=other_device(device)))

    with pytest.raises(TypeError, match="^x: expected a float16"):
        kernels.pack_signs(signs.long())
    with pytest.raises(ValueError, match="^dim: "):
        kernels.pack_signs(signs, dim=2)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_xnor_conv2d_rejects_bad_input(impl, device):
    xnor_conv2d = IMPLEMENTATIONS[impl].xnor_conv2d
    x = torch.ones(1, 3, 5, 5, device=device)
    w = torch.ones(2, 3, 3, 3, device=device)
    with pytest.raises(ValueError, match="^w_sign: expected 3 input channels"):
        xnor_conv2d(x, torch.ones(2, 4, 3, 3, device=device), 1)
    with pytest.raises(TypeError, match="^x_sign: expected a floating-point tensor"):
        xnor_conv2d(x.int(), w, 1)
    with pytest.raises(ValueError, match="^w_sign: expected a 4-D tensor"):
        xnor_conv2d(x, w[0], 1)
    with pytest.raises(ValueError, match="^padding: "):
        xnor_conv2d(x, w, (1, 1, 1))
    with pytest.raises(ValueError, match="^stride: "):
        xnor_conv2d(x, w, 1, stride=0)
    with pytest.raises(ValueError, match="^w_sign: a \\(7, 7\\) kernel does not fit"):
        xnor_conv2d(x, torch.ones(2, 3, 7, 7, device=device), 0)
    if impl == "kernel":
        with pytest.raises((ValueError, RuntimeError), match="^w_sign: "):
            xnor_conv2d(x, w.to(other_device(device)), 1)


# --------------------------------------------------------------------------- CPU without the interpreter


def _compiled_kernel_stand_in(x_ptr):  # a JITFunction made by hand: a kernel compiled, not interpreted
    pass


def test_cpu_tensor_without_interpreter_gets_a_clear_error(monkeypatch):
    cpu = torch.zeros(4)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="^a_packed: a Triton kernel needs a CUDA tensor.*TRITON_INTERPRET=1"):
        launch.check_device(cpu, "a_packed")
    with pytest.raises(RuntimeError, match="^x: .*reference"):
        launch.check_device(cpu, "x", kernel=JITFunction(_compiled_kernel_stand_in))
    with pytest.raises(ValueError, match="^x: expected a CUDA tensor"):
        launch.check_device(torch.zeros(4, device="meta"), "x")
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    launch.check_device(cpu, "a_packed")  # the interpreter runs kernels on CPU tensors


def test_launchers_check_the_device_first(monkeypatch):
    # as if rramk.kernels had been imported without TRITON_INTERPRET=1 on this CPU
    monkeypatch.setattr(launch, "runs_interpreted", lambda kernel: False)
    packed = torch.zeros(3, 2, dtype=torch.int32)
    with pytest.raises(RuntimeError, match="^a_packed: a Triton kernel needs a CUDA tensor"):
        kernels.xnor_matmul(packed, packed, 40)
    with pytest.raises(RuntimeError, match="^x: "):
        kernels.pack_signs(torch.ones(3))
    with pytest.raises(RuntimeError, match="^x_sign: "):
        kernels.xnor_conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3), 1)
    with pytest.raises(RuntimeError, match="^a: "):
        kernels.sign_matmul_tc(torch.ones(2, 3), torch.ones(2, 3))


@pytest.mark.gpu
def test_cuda_tensors_pass_the_device_check():
    launch.check_device(torch.zeros(1, device="cuda"), "x")
