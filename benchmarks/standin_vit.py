"""A stand-in for wd-vit-tagger-v3: a ViT-B/16 at 448 with 10,861 sigmoid outputs and random weights.

Its speed is the real model's speed (same architecture, same parameter count, same ONNX operators as a
timm export), and it follows the WD14 convention the showdown expects, so benchmarks measure the real
cost of a showdown without downloading anything: float32 NHWC ``[N, 448, 448, 3]`` BGR 0..255 in (the
channel flip, the transpose and the normalisation are inside the graph, as in SmilingWolf's exports),
sigmoid probabilities ``[N, 10861]`` out, a dynamic batch dimension as in the v3 exports.

Run ``python -m benchmarks.standin_vit [FOLDER]`` to build it; :func:`ensure_model` builds it once
into ``benchmarks/.models/`` (git-ignored) and reuses it while the recipe is unchanged.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

IMAGE: Final = 448
PATCH: Final = 16
WIDTH: Final = 768
DEPTH: Final = 12
HEADS: Final = 12
MLP: Final = 3072
TAGS: Final = 10_861
SEED: Final = 448
OPSET: Final = 17
#: Bump when the graph or the weights change, so cached copies are rebuilt.
RECIPE: Final = f"vit-b16-{IMAGE}-{TAGS}-seed{SEED}-v2"
MODELS: Final = Path(__file__).resolve().parent / ".models"
RATINGS: Final = ("general", "sensitive", "questionable", "explicit")
#: Share of the non-rating tags that are characters, roughly as in the v3 tag list.
CHARACTER_SHARE: Final = 0.26
#: Tags whose head bias makes them plausible: with these, an image gets a few dozen tags above 0.35
#: and most tags below 0.01, as a trained tagger does (random weights alone would put every tag near
#: 0.5, and the showdown would score and record thousands of tags per image).
PLAUSIBLE_TAGS: Final = 150


class _Graph:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        name = self.name(hint)
        self.weights.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def random(self, hint: str, shape: tuple[int, ...], std: float = 0.02) -> str:
        return self.const(hint, self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std))

    def op(self, op_type: str, inputs: list[str], hint: str = "", **attrs: Any) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def linear(self, x: str, fan_in: int, fan_out: int) -> str:
        weight = self.random("w", (fan_in, fan_out), std=fan_in**-0.5)
        return self.op("Add", [self.op("MatMul", [x, weight]), self.const("b", np.zeros(fan_out))])

    def layer_norm(self, x: str) -> str:
        gamma, beta = self.const("ln_g", np.ones(WIDTH)), self.const("ln_b", np.zeros(WIDTH))
        return self.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-6)

    def attention(self, x: str) -> str:
        tokens = (IMAGE // PATCH) ** 2 + 1
        qkv = self.linear(x, WIDTH, 3 * WIDTH)
        shape = self.const("shape", [0, tokens, 3, HEADS, WIDTH // HEADS], np.int64)
        heads = self.op("Transpose", [self.op("Reshape", [qkv, shape])], perm=[2, 0, 3, 1, 4])
        q, k, v = (self.op("Gather", [heads, self.const("i", i, np.int64)], axis=0) for i in range(3))
        scores = self.op("MatMul", [q, self.op("Transpose", [k], perm=[0, 1, 3, 2])])
        scaled = self.op("Mul", [scores, self.const("scale", (WIDTH // HEADS) ** -0.5)])
        mixed = self.op("MatMul", [self.op("Softmax", [scaled], axis=-1), v])
        merged = self.op(
            "Reshape",
            [
                self.op("Transpose", [mixed], perm=[0, 2, 1, 3]),
                self.const("shape", [0, tokens, WIDTH], np.int64),
            ],
        )
        return self.linear(merged, WIDTH, WIDTH)

    def mlp(self, x: str) -> str:
        hidden = self.linear(x, WIDTH, MLP)
        # GELU in the Erf form a PyTorch export writes: 0.5 * x * (1 + erf(x / sqrt(2))).
        erf = self.op("Erf", [self.op("Div", [hidden, self.const("sqrt2", np.sqrt(2.0))])])
        gelu = self.op(
            "Mul",
            [self.op("Mul", [hidden, self.op("Add", [erf, self.const("one", 1.0)])]), self.const("h", 0.5)],
        )
        return self.linear(gelu, MLP, WIDTH)


def build_model(seed: int = SEED) -> onnx.ModelProto:
    """The ViT-B/16@448 graph with seeded random weights (94.6M parameters)."""
    g = _Graph(np.random.default_rng(seed))
    grid = IMAGE // PATCH
    nchw = g.op("Transpose", ["input"], perm=[0, 3, 1, 2])
    rgb = g.op("Gather", [nchw, g.const("bgr_to_rgb", [2, 1, 0], np.int64)], axis=1)
    normalised = g.op("Sub", [g.op("Mul", [rgb, g.const("inv", 1 / 127.5)]), g.const("one", 1.0)])
    patches = g.op(
        "Conv",
        [normalised, g.random("patch_w", (WIDTH, 3, PATCH, PATCH)), g.const("patch_b", np.zeros(WIDTH))],
        kernel_shape=[PATCH, PATCH],
        strides=[PATCH, PATCH],
    )
    flat = g.op("Reshape", [patches, g.const("shape", [0, WIDTH, grid * grid], np.int64)])
    tokens = g.op("Transpose", [flat], perm=[0, 2, 1])
    batch = g.op(
        "Slice", [g.op("Shape", ["input"]), g.const("s", [0], np.int64), g.const("e", [1], np.int64)]
    )
    cls_shape = g.op("Concat", [batch, g.const("cls_rest", [1, WIDTH], np.int64)], axis=0)
    cls = g.op("Expand", [g.random("cls", (1, 1, WIDTH)), cls_shape])
    x = g.op("Add", [g.op("Concat", [cls, tokens], axis=1), g.random("pos", (1, grid * grid + 1, WIDTH))])
    for _ in range(DEPTH):
        x = g.op("Add", [x, g.attention(g.layer_norm(x))])
        x = g.op("Add", [x, g.mlp(g.layer_norm(x))])
    cls_out = g.op("Gather", [g.layer_norm(x), g.const("cls_index", 0, np.int64)], axis=1)
    bias = np.full(TAGS, -7.0)
    bias[: len(RATINGS)] = 0.0
    plausible = g.rng.choice(np.arange(len(RATINGS), TAGS), PLAUSIBLE_TAGS, replace=False)
    bias[plausible] = g.rng.normal(-2.0, 1.0, PLAUSIBLE_TAGS)
    head_w = g.random("head_w", (WIDTH, TAGS), std=WIDTH**-0.5)
    head = g.op("Gemm", [cls_out, head_w, g.const("head_b", bias)])
    g.nodes.append(helper.make_node("Sigmoid", [head], ["output"]))
    graph = helper.make_graph(
        g.nodes,
        "standin_vit_b16_448",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", IMAGE, IMAGE, 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", TAGS])],
        g.weights,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="pytest-tagger-showdown"
    )
    model.ir_version = 9
    return model


def write_tags(path: Path, seed: int = SEED) -> None:
    """``selected_tags.csv`` of TAGS rows: the four ratings (category 9), then general (0) and
    character (4) tags with made-up names and counts."""
    rng = np.random.default_rng(seed)
    others = TAGS - len(RATINGS)
    characters = int(others * CHARACTER_SHARE)
    rows = [(name, 9) for name in RATINGS]
    rows += [(f"general_tag_{i:05d}", 0) for i in range(others - characters)]
    rows += [(f"character_{i:05d}_(series)", 4) for i in range(characters)]
    counts = rng.integers(100, 500_000, size=len(rows))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["tag_id", "name", "category", "count"])
        for index, ((name, category), count) in enumerate(zip(rows, counts, strict=True)):
            writer.writerow([index, name, category, int(count)])


def ensure_model(folder: Path | None = None) -> Path:
    """The model folder (``model.onnx`` + ``selected_tags.csv``), built once per recipe."""
    target = folder or MODELS / RECIPE
    stamp = target / "RECIPE"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == RECIPE:
        return target
    target.mkdir(parents=True, exist_ok=True)
    partial = target / "model.onnx.partial"
    onnx.save(build_model(), str(partial))
    partial.replace(target / "model.onnx")
    write_tags(target / "selected_tags.csv")
    stamp.write_text(RECIPE, encoding="utf-8")
    return target


if __name__ == "__main__":
    print(ensure_model(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
