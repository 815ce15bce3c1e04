"""The records ``edgekit diff`` produces: per tensor, per weight, per runtime, and the whole report.

Plain frozen dataclasses with ``to_dict`` (the JSON); the presenter is edgekit.diff.table.print_diff_report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgekit.diff.speed import SpeedReport

REPORT_SCHEMA = "edgekit.diff/1"


@dataclass(frozen=True)
class TensorDiff:
    """One tensor computed by both models, int8 vs fp32, over all images compared.

    ``sqnr_db``: 10 log10(fp32 energy / error energy) of the int8 model's tensor (after its Q/DQ)
    against the fp32 model's. ``rounding_sqnr_db``: the same for this tensor's own Q/DQ alone (its
    value before QuantizeLinear vs after DequantizeLinear). ``introduced_db``: the SQNR of the
    producing node's worst activation input minus ``sqnr_db``, the loss this node adds;
    ``rank`` 1 is the node that adds the most.
    """

    index: int  # position in the fp32 graph's order
    tensor: str
    op: str  # the int8 model's producing op ("input" for the graph input)
    node: str | None
    folded: tuple[str, ...]  # fp32 ops the int8 graph merged into this node (a Relu into its Conv)
    quantized: bool  # all its computed inputs come from DequantizeLinear and its output is quantized
    kernel: str | None  # what ONNX Runtime runs the node as after its optimisations (QLinearConv, ...)
    int8_kernel: bool
    sqnr_db: float
    relative_error: float  # ||int8 - fp32|| / ||fp32||
    max_abs_diff: float
    rounding_sqnr_db: float | None
    input_sqnr_db: float | None
    introduced_db: float | None
    weights: tuple[str, ...] = ()
    weight_sqnr_db: float | None = None
    rank: int = 0

    def to_dict(self) -> dict:
        record = asdict(self)
        record["folded"], record["weights"] = list(self.folded), list(self.weights)
        return record


@dataclass(frozen=True)
class WeightDiff:
    """One weight (or bias) initializer: its dequantized int8 value vs the fp32 value."""

    name: str
    sqnr_db: float

    def to_dict(self) -> dict:
        return {"name": self.name, "sqnr_db": self.sqnr_db}


@dataclass(frozen=True)
class LayerReport:
    """The per-layer comparison of one int8 model with its fp32 model."""

    backend: str  # "onnxruntime" or "openvino"
    fp32_model: str
    int8_model: str
    images: int
    tensors: tuple[TensorDiff, ...]  # graph order
    weights: tuple[WeightDiff, ...] = ()
    largest_introduced: str | None = None  # the tensor whose node adds the most loss
    first_sharp_drop: str | None = None  # the first tensor, in graph order, whose node adds >= sharp_drop_db
    lowest_sqnr: str | None = None
    sharp_drop_db: float | None = None
    note: str | None = None

    @classmethod
    def of(cls, backend: str, fp32_model: str, int8_model: str, images: int, tensors, weights=(), *,
           sharp_drop_db: float, note: str | None = None) -> LayerReport:
        """Ranks the tensors (most loss added first; a row without inputs to compare, the graph
        input, after the others by its SQNR) and names the culprits."""
        tensors = list(tensors)
        order = sorted(range(len(tensors)), key=lambda i: (
            tensors[i].introduced_db is None, -(tensors[i].introduced_db or 0.0), tensors[i].sqnr_db))
        for rank, i in enumerate(order, 1):
            tensors[i] = replace(tensors[i], rank=rank)
        first = next((t.tensor for t in tensors if t.introduced_db is not None and t.introduced_db >= sharp_drop_db),
                     None)
        largest = tensors[order[0]].tensor if tensors and tensors[order[0]].introduced_db is not None else None
        lowest = min(tensors, key=lambda t: t.sqnr_db).tensor if tensors else None
        return cls(backend, fp32_model, int8_model, images, tuple(tensors), tuple(weights), largest, first,
                   lowest, sharp_drop_db, note)

    def ranked(self) -> list[TensorDiff]:
        return sorted(self.tensors, key=lambda t: t.rank)

    def to_dict(self) -> dict:
        return {"backend": self.backend, "fp32_model": self.fp32_model, "int8_model": self.int8_model,
                "images": self.images, "largest_introduced": self.largest_introduced,
                "first_sharp_drop": self.first_sharp_drop, "sharp_drop_db": self.sharp_drop_db,
                "lowest_sqnr": self.lowest_sqnr, "note": self.note,
                "tensors": [t.to_dict() for t in self.tensors], "weights": [w.to_dict() for w in self.weights]}


@dataclass(frozen=True)
class OutputCost:
    """One Q/DQ pair of the int8 model put alone into the fp32 model: the logits' error it causes."""

    rank: int  # 1: the pair that alone adds the most noise at the output
    tensor: str  # the activation (the QuantizeLinear's input) or the weight it quantizes
    kind: str  # "activation" or "weight" (weights and biases)
    consumers: tuple[str, ...]  # op types reading the tensor in the fp32 graph
    output_sqnr_db: float  # logits of fp32-with-this-pair vs fp32 logits
    noise_share: float  # of the noise summed over every pair
    agreement: float  # top-1 agreement with fp32

    def to_dict(self) -> dict:
        record = asdict(self)
        record["consumers"] = list(self.consumers)
        return record


@dataclass(frozen=True)
class RangeChoice:
    """One costly activation's recorded quantization range against the range its data suggests."""

    tensor: str
    recorded: tuple[float, float]  # the range the int8 model's scale and zero point encode
    # The least noisy on the fitting images of the candidates between the data range (mean over them of
    # each image's min and max, widened to hold 0) and the recorded one (diff.ranges.STEPS); None when
    # the recorded range was.
    chosen: tuple[float, float] | None
    widening: float | None  # the factor on the data range that gave ``chosen``
    noise_ratio: float  # the pair's output noise with ``chosen`` / with the recorded range, on the
    # held-out images (1 when the recorded range was kept): below 1, the re-chosen range helps
    # Of the held-out images, the share whose logit error the chosen range lowered: the sum above can
    # be one outlier image's, which a tight range clips (None when the recorded range was kept).
    images_better: float | None = None

    def to_dict(self) -> dict:
        return {"tensor": self.tensor, "recorded": list(self.recorded),
                "chosen": list(self.chosen) if self.chosen else None, "widening": self.widening,
                "noise_ratio": self.noise_ratio, "images_better": self.images_better}


@dataclass(frozen=True)
class RangeReport:
    """The range choice of the costliest activations, and the whole int8 model with the helpful ones."""

    fit_images: int  # the data ranges come from these
    score_images: int  # the others: every noise and agreement below is measured on them
    choices: tuple[RangeChoice, ...]  # in output-cost order
    applied: int  # choices with a chosen range, put into the whole int8 model together
    # Unfused (basic optimisations) like the output cost, on the held-out images.
    recorded_agreement: float  # the int8 model as built, top-1 agreement with fp32
    recorded_sqnr_db: float
    tightened_agreement: float | None  # with the applied ranges; None when none applied
    tightened_sqnr_db: float | None

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "choices"},
                "choices": [c.to_dict() for c in self.choices]}


@dataclass(frozen=True)
class OutputCostReport:
    """Every pair's output cost, worst first, and how concentrated the int8 model's loss is."""

    images: int
    pairs: int
    skipped: tuple[str, ...]  # pairs whose tensor the fp32 graph lacks
    int8_output_sqnr_db: float  # the whole int8 model's logits vs fp32, same images
    int8_agreement: float
    # Sum of single-pair noise / the whole int8 model's: about 1 when the errors add; None when int8 == fp32.
    summed_to_whole: float | None
    costs: tuple[OutputCost, ...]  # ranked
    ranges: RangeReport | None = None  # the costliest activations' range choice, when it was costed

    def pairs_for_share(self, share: float) -> int:
        """How many of the costliest pairs it takes to carry ``share`` of the summed noise."""
        running = 0.0
        for count, cost in enumerate(self.costs, 1):
            running += cost.noise_share
            if running >= share - 1e-12:
                return count
        return len(self.costs)

    def concentrated(self) -> bool:
        """90% of the noise in at most 3 pairs or 5% of them: a few tensors carry the loss. Not half:
        logit error goes with the noise's square root, so removing half the noise (3 dB) recovers
        little. Measured on kEffNet-B0 (benchmarks/diff_check.py): the 16 pairs carrying half of it
        kept in fp32 took top-1 agreement from 88.3% to 91.6%, where tighter ranges reached 97.2%."""
        return bool(self.costs) and self.pairs_for_share(0.9) <= max(3, round(0.05 * self.pairs))

    def share_of(self, kind: str) -> float:
        return sum(cost.noise_share for cost in self.costs if cost.kind == kind)

    def to_dict(self) -> dict:
        return {"images": self.images, "pairs": self.pairs, "skipped": list(self.skipped),
                "int8_output_sqnr_db": self.int8_output_sqnr_db, "int8_agreement": self.int8_agreement,
                "summed_to_whole": self.summed_to_whole, "pairs_for_half": self.pairs_for_share(0.5),
                "pairs_for_90_percent": self.pairs_for_share(0.9), "weight_share": self.share_of("weight"),
                "concentrated": self.concentrated(), "costs": [c.to_dict() for c in self.costs],
                "ranges": self.ranges.to_dict() if self.ranges else None}


@dataclass(frozen=True)
class RuntimeDiff:
    """One runtime and model file at the output, against the fp32 reference, on the same images."""

    runtime: str  # "pytorch", "onnxruntime", "openvino"
    precision: str
    model: str  # the artifact file it ran (or what it was converted from)
    ok: bool
    error: str | None = None  # why it did not run
    max_abs_diff: float | None = None
    max_normalised_diff: float | None = None  # divided by max |reference logit|
    top1_agreement: float | None = None  # with the reference's top-1
    top1: float | None = None  # accuracy, when the images have labels
    reference: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DiffReport:
    """The whole ``edgekit diff``: per layer (when the int8 model allows it) and at the output."""

    artifact: str
    model: str
    target: str
    images_source: str
    labelled: bool
    output_images: int
    outputs: tuple[RuntimeDiff, ...]
    layers: LayerReport | None = None
    layers_note: str | None = None  # why there is no per-layer comparison
    output_cost: OutputCostReport | None = None
    speed: SpeedReport | None = None  # where the int8 model spends its time (edgekit.diff.speed)

    def to_dict(self) -> dict:
        return {"schema": REPORT_SCHEMA, "artifact": self.artifact, "model": self.model, "target": self.target,
                "images": {"source": self.images_source, "labelled": self.labelled, "outputs": self.output_images},
                "outputs": [row.to_dict() for row in self.outputs],
                "layers": self.layers.to_dict() if self.layers else None, "layers_note": self.layers_note,
                "output_cost": self.output_cost.to_dict() if self.output_cost else None,
                "speed": self.speed.to_dict() if self.speed else None}
