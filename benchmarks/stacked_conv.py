"""Stacked convolutions: the forms K branches' convolutions could take in a pack, on JAX.

`kreg.tuning.stacked_layers.StackedConv` convolves each branch's slice with
the branch's own kernel: K backend convolutions, whose train step XLA
compiles for longer the more branches there are. This script times the
single-op forms against it, in one process, on the convnet's four
convolutions (8x8 images; 1 -> 16 -> 16 channels, 2x2 max pool,
16 -> 32 -> 32, 2x2 max pool; "same" padding, ReLU; batch 32), as the
gradient of a sum of squares (pure JAX, no Keras):

- `per-branch`: the K convolutions (what StackedConv does; the reference);
- `grouped`: one convolution of the branches as channel groups
  (`feature_group_count=K`, also what `jax.vmap` of a convolution becomes);
- `map`: `lax.map` over the branches, one convolution in a loop
  (compiled once whatever K);
- `im2col`: the 3x3 patches of every branch, then one batched matmul;
- `custom-grad`: per-branch convolutions forward, the gradients as two
  batched im2col matmuls (a `jax.custom_vjp`).

For each form: the XLA compile time of the train step and the time of a step
(mean of `--steps` after one), each as a ratio to `per-branch`, and the
largest difference of its gradients from `per-branch`'s, relative to the
largest gradient of each kernel.

    .venv/bin/python benchmarks/stacked_conv.py --branches 6 18
"""

import argparse
import time

import jax
import jax.numpy as jnp
from jax import lax

DIMENSIONS = ("NHWC", "HWIO", "NHWC")
CHANNELS = ((1, 16), (16, 16), (16, 32), (32, 32))


def convolve(x, kernel):
    """One branch's 3x3 "same" convolution: `(B, H, W, C)` -> `(B, H, W, F)`."""
    return lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=DIMENSIONS)


def per_branch(x, kernels):
    return jnp.stack([convolve(x[:, k], kernels[k]) for k in range(kernels.shape[0])], axis=1)


def grouped(x, kernels):
    b, k, h, w, c = x.shape
    f = kernels.shape[-1]
    x = jnp.moveaxis(x, 1, 3).reshape(b, h, w, k * c)
    kernels = jnp.moveaxis(kernels, 0, 3).reshape(3, 3, c, k * f)
    y = lax.conv_general_dilated(x, kernels, (1, 1), "SAME", dimension_numbers=DIMENSIONS, feature_group_count=k)
    return jnp.moveaxis(y.reshape(b, h, w, k, f), 3, 1)


def mapped(x, kernels):
    y = lax.map(lambda pair: convolve(*pair), (jnp.moveaxis(x, 1, 0), kernels))
    return jnp.moveaxis(y, 0, 1)


def patches(x):
    """The 3x3 "same" patches of `(B, K, H, W, C)`: `(B, K, H, W, 9C)`."""
    h, w = x.shape[2], x.shape[3]
    padded = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1), (0, 0)))
    return jnp.concatenate([padded[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=-1)


def im2col(x, kernels):
    k, f = kernels.shape[0], kernels.shape[-1]
    return jnp.einsum("bkhwp,kpf->bkhwf", patches(x), kernels.reshape(k, -1, f))


@jax.custom_vjp
def custom_grad(x, kernels):
    return per_branch(x, kernels)


def _forward(x, kernels):
    return per_branch(x, kernels), (x, kernels)


def _backward(saved, grad):
    x, kernels = saved
    k = kernels.shape[0]
    flipped = kernels[:, ::-1, ::-1].swapaxes(-1, -2)  # (K, 3, 3, F, C)
    grad_x = jnp.einsum("bkhwp,kpc->bkhwc", patches(grad), flipped.reshape(k, -1, flipped.shape[-1]))
    grad_kernels = jnp.einsum("bkhwp,bkhwf->kpf", patches(x), grad).reshape(kernels.shape)
    return grad_x, grad_kernels


custom_grad.defvjp(_forward, _backward)

FORMS = {"per-branch": per_branch, "grouped": grouped, "map": mapped, "im2col": im2col, "custom-grad": custom_grad}


def pool(x):
    b, k, h, w, c = x.shape
    return x.reshape(b, k, h // 2, 2, w // 2, 2, c).max(axis=(3, 5))


def loss(form, kernels, x):
    for layer, kernel in enumerate(kernels):
        x = jax.nn.relu(form(x, kernel))
        if layer % 2:
            x = pool(x)
    return jnp.sum(x**2)


def measure(form, kernels, x, steps):
    """(compile seconds, seconds a step, gradients) of `form`'s train step."""
    step = jax.jit(jax.grad(lambda kernels, x: loss(form, kernels, x)))
    start = time.perf_counter()
    compiled = step.lower(kernels, x).compile()
    compile_seconds = time.perf_counter() - start
    grads = jax.block_until_ready(compiled(kernels, x))
    start = time.perf_counter()
    for _ in range(steps):
        out = compiled(kernels, x)
    jax.block_until_ready(out)
    return compile_seconds, (time.perf_counter() - start) / steps, grads


def main():
    parser = argparse.ArgumentParser(description="Forms of K stacked convolutions, timed against K per-branch convolutions (JAX).")
    parser.add_argument("--branches", type=int, nargs="+", default=[6, 18], help="numbers of branches K (default: 6 18)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per form (default: 30)")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per step (default: 32)")
    args = parser.parse_args()
    for k in args.branches:
        key = jax.random.PRNGKey(0)
        kernels = [0.1 * jax.random.normal(jax.random.fold_in(key, i), (k, 3, 3, c, f)) for i, (c, f) in enumerate(CHANNELS)]
        x = jax.random.normal(key, (args.batch_size, k, 8, 8, 1))
        print(f"K = {k} branches, batch {args.batch_size}: compile and step time, as ratios to per-branch")
        reference = None
        for name, form in FORMS.items():
            compile_seconds, step_seconds, grads = measure(form, kernels, x, args.steps)
            if reference is None:
                reference = (compile_seconds, step_seconds, grads)
            difference = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))) for a, b in zip(grads, reference[2]))
            print(
                f"  {name:12s} compile {compile_seconds:6.2f} s ({compile_seconds / reference[0]:5.2f})  "
                f"step {step_seconds * 1e3:8.2f} ms ({step_seconds / reference[1]:6.2f})  "
                f"gradients differ by {difference:.0e} (relative)"
            )


if __name__ == "__main__":
    main()
