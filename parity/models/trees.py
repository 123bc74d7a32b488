"""The registered model's trees, read from its saved JSON and scored with numpy: bit-identical to
xgboost's CPU predictor, so serving, batch and monitoring score without importing xgboost (nor
the scipy it pulls in: most of serving's start-up once).

How xgboost (3.x, CPU) scores a binary:logistic gbtree, reproduced step by step:
- the row is cast to float32; a split sends it left when `x < split_condition` (float32), a
  missing value (NaN) goes the node's default way; infinities compare as numbers;
- the margin starts from the base margin, `-logf(1.0f / base_score - 1.0f)` in float32, and adds
  each tree's leaf value in float32, tree by tree (the order matters: float sums do not commute);
- the probability is `1.0f / (expf(min(-margin, 88.7f)) + 1.0f)` in float32. glibc's `expf` is
  not correctly rounded (~0.06% of inputs differ from the exact value's rounding), so `sigmoid`
  computes exp in float64, rounds to float32, and asks libm's own `expf` (ctypes, the function
  xgboost calls) for the few values whose exact exp lies within 1% of a float32 ulp of a rounding
  midpoint — where glibc's result may fall either way (its error before rounding is ~0.002 ulp).

`Forest.from_json` refuses (`Unsupported`, naming the reason) what it does not reproduce:
another booster or objective, several outputs, categorical splits, vector leaves, a
best_iteration (early stopping) attribute, no trees at all. The caller then keeps xgboost (`parity.models.loaded`).
"""

from __future__ import annotations

import ctypes
import itertools
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

try:  # orjson: the 400-tree JSON in ~1/3 of the stdlib's time (an optional speed-up only)
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is installed with the project
    from json import loads as _loads

MAX_CODE_SPLITS = 10  # trees with at most this many splits are scored by a 2^splits lookup table
LOGISTIC = "binary:logistic"
OBJECTIVES = (LOGISTIC, "reg:squarederror")  # the margin of a regression: its prediction
_EXP_CLAMP = np.float32(88.7)  # xgboost's Sigmoid: min(-x, 88.7f) avoids expf overflow
_RISKY_ULP = 0.01  # |exact exp - float32 midpoint| below this many ulps: ask libm's expf


class Unsupported(ValueError):
    """The model has a feature this implementation does not reproduce (xgboost must score it)."""


@dataclass(frozen=True)
class Forest:
    """Every node of every tree as flat arrays (global node ids, tree by tree)."""

    objective: str  # one of OBJECTIVES
    n_features: int
    feature_names: tuple[str, ...] | None
    base_margin: np.float32
    tree_start: np.ndarray  # (trees + 1,) first node of each tree, then the node count
    left: np.ndarray  # (nodes,) global id of the left child, -1 for a leaf
    right: np.ndarray
    feature: np.ndarray  # split feature (0 for a leaf)
    threshold: np.ndarray  # float32 split condition (a leaf's value for a leaf)
    default_left: np.ndarray  # where a missing value goes
    cover: np.ndarray  # float64 sum of hessians (TreeSHAP's cover fractions)
    depth: int  # the deepest leaf's depth
    # trees with splits, scored through per-tree codes (bit k = went left at the tree's k-th split)
    split_nodes: np.ndarray  # (splits,) split node ids, tree by tree, node order within a tree
    split_tree: np.ndarray  # (split trees,) the trees that have splits
    split_start: np.ndarray  # (split trees,) first entry of each in split_nodes
    width: int  # most splits in one tree: bits per code
    code_limit: int = MAX_CODE_SPLITS  # wider trees are walked node by node (`_leaves`)
    # derived in __post_init__: code_column, code_threshold, code_slot (the padded code layout)
    # and leaf_table ((split trees * codes,) float32 leaf value per code; None when too wide)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Forest:
        """Parse xgboost's saved JSON model (never through xgboost). Raises `Unsupported`."""
        try:
            model = _loads(raw)
            learner = model["learner"]
        except (ValueError, TypeError, KeyError) as err:
            raise Unsupported(f"not an xgboost JSON model ({err})") from err
        return cls._from_learner(learner)

    @classmethod
    def _from_learner(cls, learner: dict[str, Any]) -> Forest:
        gb = learner["gradient_booster"]
        if gb.get("name") != "gbtree":
            raise Unsupported(f"booster {gb.get('name')!r} (only gbtree)")
        param = learner["learner_model_param"]
        if int(param.get("num_class", "0")) > 1 or int(param.get("num_target", "1")) != 1:
            raise Unsupported("more than one output group")
        if any(int(t) != 0 for t in gb["model"].get("tree_info", [])):
            raise Unsupported("more than one output group")
        objective = learner.get("objective", {}).get("name")
        if objective not in OBJECTIVES:
            raise Unsupported(f"objective {objective!r} (only {', '.join(OBJECTIVES)})")
        if "best_iteration" in learner.get("attributes", {}):
            raise Unsupported("a best_iteration attribute (early stopping): which trees score is ambiguous")
        if any(t == "c" for t in learner.get("feature_types", [])):
            raise Unsupported("categorical features")
        trees = gb["model"]["trees"]
        if not trees:  # xgboost leaves an untrained model's base_score untransformed: nothing to mirror
            raise Unsupported("no trees")
        if any(t["tree_param"].get("size_leaf_vector", "1") not in ("0", "1") for t in trees):
            raise Unsupported("vector leaves")
        if any(t.get("categories_nodes") for t in trees):
            raise Unsupported("categorical splits")
        names = learner.get("feature_names") or None
        base_score = _scalar(param["base_score"])
        base = _base_margin(base_score) if objective == LOGISTIC else np.float32(base_score)
        return cls._build(objective, int(param["num_feature"]), tuple(names) if names else None, base, trees)

    @classmethod
    def _build(cls, objective: str, n_features: int, names: tuple[str, ...] | None, base: np.float32,
               trees: list[dict[str, Any]]) -> Forest:
        sizes = np.asarray([len(t["left_children"]) for t in trees], dtype=np.intp)
        tree_start = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        offsets = np.repeat(tree_start[:-1], sizes)

        def flat(key: str, dtype: Any) -> np.ndarray:
            return np.fromiter(itertools.chain.from_iterable(t[key] for t in trees), dtype=dtype, count=len(offsets))

        if np.fromiter(itertools.chain.from_iterable(t.get("split_type", ()) for t in trees), dtype=np.int8).any():
            raise Unsupported("categorical splits")
        left_local, right_local = flat("left_children", np.intp), flat("right_children", np.intp)
        leaf = left_local == -1
        left = np.where(leaf, -1, left_local + offsets)
        right = np.where(leaf, -1, right_local + offsets)
        # JSON holds float32 values in shortest round-trip form: float64 parse -> float32 is exact
        threshold = flat("split_conditions", np.float64).astype(np.float32)
        node_tree = np.repeat(np.arange(len(trees)), sizes)
        split_nodes = np.flatnonzero(~leaf)
        split_tree, split_start, per_tree = np.unique(node_tree[split_nodes], return_index=True, return_counts=True)
        width = int(per_tree.max(initial=0))
        return cls(
            objective=objective, n_features=n_features, feature_names=names, base_margin=base, tree_start=tree_start,
            left=left, right=right, feature=np.where(leaf, 0, flat("split_indices", np.intp)),
            threshold=threshold, default_left=flat("default_left", np.int8).astype(bool),
            cover=flat("sum_hessian", np.float64), depth=_depth(left, right, tree_start[:-1]),
            split_nodes=split_nodes, split_tree=split_tree.astype(np.intp), split_start=split_start.astype(np.intp),
            width=width,
        )

    def __post_init__(self) -> None:
        # the code layout: each tree with splits padded to `width` slots (a pad never goes left);
        # slot k of a tree = its k-th split node, the code's bit k
        n_split = len(self.split_tree)
        counts = np.diff(np.append(self.split_start, len(self.split_nodes)))
        slot = np.arange(len(self.split_nodes)) - np.repeat(self.split_start, counts)
        index = slot * n_split + np.repeat(np.arange(n_split), counts)  # slot-major: (width, split trees)
        # NaN is replaced by +inf (default right) or -inf (default left) in a doubled row, so one
        # `x < threshold` decides every node: see `split_codes`
        column = np.zeros(n_split * self.width, dtype=np.intp)
        limit = np.full(n_split * self.width, -np.inf, dtype=np.float32)
        node = self.split_nodes
        column[index] = self.feature[node] + self.n_features * self.default_left[node]
        limit[index] = self.threshold[node]
        set_ = object.__setattr__
        set_(self, "code_column", column)
        set_(self, "code_threshold", limit)
        set_(self, "code_slot", index)
        set_(self, "leaf_table", self._leaf_table() if self.width <= self.code_limit else None)

    @property
    def n_trees(self) -> int:
        return len(self.tree_start) - 1

    @property
    def codes(self) -> int:
        return 1 << self.width

    def _leaf_table(self) -> np.ndarray:
        """(split trees * codes,) float32: the leaf value code c reaches in each tree with splits."""
        if not len(self.split_tree):
            return np.empty(0, dtype=np.float32)
        slot = np.zeros(len(self.left), dtype=np.intp)
        slot[self.split_nodes] = self.code_slot // len(self.split_tree)
        codes = np.arange(self.codes)[:, None]
        node = np.broadcast_to(self.tree_start[self.split_tree], (self.codes, len(self.split_tree))).copy()
        for _ in range(self.depth):
            inner = self.left[node] != -1
            step = np.where((codes >> slot[node]) & 1, self.left[node], self.right[node])
            node = np.where(inner, step, node)
        return np.ascontiguousarray(self.threshold[node].T).ravel()

    def as_float32(self, matrix: np.ndarray) -> np.ndarray:
        """The rows as xgboost reads them: float32 (checked to have the model's columns)."""
        x = np.asarray(matrix)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} columns, got {x.shape}")
        with np.errstate(over="ignore"):  # beyond float32's range -> inf, as xgboost's cast
            return x.astype(np.float32)

    def split_codes(self, x32: np.ndarray) -> np.ndarray:
        """(split trees, rows) integers: bit k set when the row goes left at the tree's k-th split.

        A missing value goes the node's default way and `NaN < t` is False, so each row is doubled:
        NaN -> +inf in the first half (read by default-right nodes: +inf < t is False, right) and
        -inf in the second (default-left nodes: -inf < t, left); real infinities are unchanged and
        compare as numbers, as in xgboost. One gather and one comparison then decide every node
        (column-major: a row gather of the transposed rows is ~5x faster than a column gather)."""
        n, f = x32.shape
        doubled = np.empty((2 * f, n), dtype=np.float32)
        doubled[:f] = doubled[f:] = x32.T
        missing = np.isnan(x32.T)
        doubled[:f][missing] = np.inf
        doubled[f:][missing] = -np.inf
        goes_left = doubled.take(self.code_column, axis=0) < self.code_threshold[:, None]
        goes_left = goes_left.reshape(self.width, len(self.split_tree), n)
        small = self.width <= 8
        code = goes_left[0].view(np.uint8).copy() if small else goes_left[0].astype(np.int32)
        for k in range(1, self.width):
            code |= (goes_left[k].view(np.uint8) << np.uint8(k)) if small else (goes_left[k].astype(np.int32) << k)
        return code

    def leaf_values(self, x32: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
        """(trees, rows) float32: the value of the leaf each row reaches in each tree."""
        n = len(x32)
        if self.leaf_table is None:
            return np.ascontiguousarray(self.threshold[self._leaves(x32)].T)
        out = np.empty((self.n_trees, n), dtype=np.float32)
        single = self.left[self.tree_start[:-1]] == -1  # trees that are one leaf
        out[single] = self.threshold[self.tree_start[:-1][single]][:, None]
        if len(self.split_tree) and n:
            if codes is None:
                codes = self.split_codes(x32)
            base = np.arange(len(self.split_tree), dtype=np.intp)[:, None] * self.codes
            out[self.split_tree] = self.leaf_table[base + codes]
        return out

    def _leaves(self, x32: np.ndarray) -> np.ndarray:
        """(rows, trees) leaf node ids by walking down, all rows and trees at once."""
        node = np.broadcast_to(self.tree_start[:-1], (len(x32), self.n_trees)).copy()
        rows = np.arange(len(x32))[:, None]
        for _ in range(self.depth):
            inner = self.left[node] != -1
            values = x32[rows, self.feature[node]]
            goes_left = np.where(np.isnan(values), self.default_left[node], values < self.threshold[node])
            node = np.where(inner, np.where(goes_left, self.left[node], self.right[node]), node)
        return node

    def margin(self, matrix: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
        """(rows,) float32 log-odds = xgboost's `output_margin`, bit for bit."""
        x32 = self.as_float32(matrix)
        terms = np.empty((self.n_trees + 1, len(x32)), dtype=np.float32)
        terms[0] = self.base_margin
        terms[1:] = self.leaf_values(x32, codes)
        return _sequential_sum(terms)

    def proba(self, matrix: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
        """(rows,) float32 probabilities = xgboost's `predict`, bit for bit (binary:logistic)."""
        if self.objective != LOGISTIC:
            raise Unsupported(f"probabilities of a {self.objective} model")
        return sigmoid(self.margin(matrix, codes))


def sigmoid(margin: np.ndarray) -> np.ndarray:
    """xgboost's float32 `Sigmoid`: 1.0f / (expf(min(-x, 88.7f)) + 1.0f) (its + 1e-16f vanishes)."""
    x = np.minimum(-np.asarray(margin, dtype=np.float32), _EXP_CLAMP)
    exact = np.exp(x.astype(np.float64))
    e = exact.astype(np.float32)
    # the float32 neighbour on the exact value's side; near the midpoint between the two, glibc's
    # expf may round the other way than the exact value does: ask it
    toward = np.where(exact > e, np.float32(np.inf), np.float32(-np.inf))
    gap = np.abs(np.nextafter(e, toward).astype(np.float64) - e)
    risky = np.abs(np.abs(exact - e) - gap / 2) <= _RISKY_ULP * gap
    if risky.any():
        expf = _libm_expf()
        for i in np.flatnonzero(risky).tolist():
            e[i] = expf(float(x[i]))
    return np.float32(1.0) / (e + np.float32(1.0))


def _sequential_sum(terms: np.ndarray) -> np.ndarray:
    """Column sums of a (terms, rows) float32 array added strictly in row order, as xgboost adds
    trees. A reduction over axis 0 of a C-contiguous array with two or more columns adds whole
    rows one after the other (numpy's pairwise summation applies only along the contiguous axis,
    which is what a single column becomes); one column takes the (slower) explicit accumulate."""
    if terms.shape[1] < 2:
        return np.add.accumulate(terms, axis=0, dtype=np.float32)[-1].copy()
    return np.add.reduce(np.ascontiguousarray(terms), axis=0, dtype=np.float32)


def _base_margin(base_score: float) -> np.float32:
    """binary:logistic's ProbToMargin: -logf(1.0f / base_score - 1.0f), in float32 via libm."""
    p = np.float32(base_score)
    if not 0.0 < p < 1.0:
        raise Unsupported(f"base_score {base_score} outside (0, 1) for binary:logistic")
    return np.float32(-_libm_logf()(float(np.float32(1.0) / p - np.float32(1.0))))


def _scalar(text: Any) -> float:
    """xgboost's base_score: '5E-1' or, since 3.1, a one-element vector '[5E-1]'."""
    values = str(text).strip().strip("[]").split(",")
    if len(values) != 1:
        raise Unsupported(f"base_score {text!r} has several values")
    return float(values[0])


@cache
def _libm() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libm.so.6")
    except OSError as err:  # not glibc: the exact expf/logf xgboost uses are not reachable
        raise Unsupported(f"glibc's libm is not loadable ({err}): xgboost's float32 rounding cannot be reproduced") from err


@cache
def _libm_expf() -> Any:
    f = _libm().expf
    f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    return f


@cache
def _libm_logf() -> Any:
    f = _libm().logf
    f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
    return f



def _depth(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> int:
    """The deepest leaf's depth, level by level from the roots."""
    depth, level = 0, roots
    while True:
        inner = level[left[level] != -1]
        if not len(inner):
            return depth
        level, depth = np.concatenate([left[inner], right[inner]]), depth + 1
