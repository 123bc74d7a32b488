"""Exact TreeSHAP for an xgboost tree ensemble, precomputed per leaf and vectorised over rows.

xgboost's `pred_contribs` walks every tree for every row with the recursive path algorithm
(O(trees x leaves x depth^2) per row, ~20 µs per row for a 40-tree depth-3 model here): on a
100-customer request it was the largest single step of `/v1/predict`. The values it computes,
path-dependent TreeSHAP, decompose by leaf: a leaf contributes to the features on its path
only, and what it contributes depends only on *which* of its path conditions a row satisfies
(a pattern of at most `depth` bits) — not on the row itself. So each leaf's contributions are
tabulated once, for every pattern, when the model loads (the idea of Fast TreeSHAP v2, Yang
2021); a row then costs one comparison per split node and one table lookup per (leaf, path
feature), done for all rows at once with numpy.

For a leaf with value v whose path holds the M distinct features P (a feature split on twice
counts once: its conditions are ANDed and its cover fractions multiplied), with z_j the share
of the training cover that follows the path at j's splits and o_j = 1 if the row follows it:

    phi_i = v (o_i - z_i) sum_{S ⊆ P \\ {i}} |S|! (M - |S| - 1)! / M!  prod_{j in S} o_j  prod_{j not in S} z_j

(the Shapley value of feature i in the leaf's term of the path-dependent conditional
expectation; summed over leaves it is xgboost's TreeSHAP). The sum over subsets is the
polynomial prod_{j != i} (z_j + o_j t), weighted by degree.

For small trees (depth 3: 7 split nodes) the leaf tables are summed once more per tree: a tree's
contribution to each of its features depends only on which way the row goes at each of its split
nodes, so it is tabulated for every combination of those decisions (`_TreeTables`, 2^7 codes x
the tree's features); a row then costs one comparison per split node and one lookup per (tree,
feature) — 3-4x faster than per (leaf, path feature), ~10x faster than `pred_contribs`.

`TreeShap.from_forest` builds the tables from the model's trees as `parity.models.trees` reads them
from the saved JSON (no xgboost), and shares its per-tree split codes: a row's comparisons are done
once for its score and its explanation. `TreeShap.from_booster` (tests, training) also checks the
tables against xgboost's `pred_contribs` on rows built around every split threshold (NaN
included); a model it cannot represent (categorical splits, several outputs, dart, trees too deep
for the tables) raises `Unsupported` and the caller keeps xgboost's own TreeSHAP.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from parity.models.trees import Forest, Unsupported

MAX_PATH_FEATURES = 8  # 2^8 patterns x 8 values per leaf; deeper trees use xgboost's TreeSHAP
MAX_TABLE_VALUES = 20_000_000  # ~160 MB of float64 tables at most
MAX_TREE_SPLITS = 10  # per-tree tables (2^splits codes) for trees this small (depth 3: 7)
MAX_SCRATCH_VALUES = 4_000_000  # codes x slots evaluated to build them (32 MB)
CHECK_ROWS = 96
CHECK_TOLERANCE = 1e-4  # log-odds; xgboost accumulates in float32
CHUNK_ROWS = 64  # rows per block in `contributions`


@dataclass(frozen=True)
class _Leaf:
    value: float
    features: tuple[int, ...]  # distinct path features, in path order
    zero: tuple[float, ...]  # cover fraction per feature
    steps: tuple[tuple[int, int, bool], ...]  # (path feature index, node, went left)


@dataclass(frozen=True)
class TreeShap:
    """Per-leaf pattern tables of one model; `contributions(X)` = xgboost's pred_contribs."""

    n_features: int
    bias: float
    node_feature: np.ndarray  # (nodes,) split feature of every split node of every tree
    node_threshold: np.ndarray  # (nodes,) float32 split value (go left when x < value)
    node_default_left: np.ndarray  # (nodes,) where a missing value goes
    step_node: np.ndarray  # (steps,) the split node of each (leaf, path feature) first step
    step_left: np.ndarray  # (steps,) whether the leaf's path goes left there
    extra: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]  # repeated splits: (slot, node, left)
    slot_bit: np.ndarray  # (slots,) 1 << position of the feature on its leaf's path
    leaf_start: np.ndarray  # (leaves,) first slot of each leaf (slots are grouped by leaf)
    # the table lookup runs over the slots sorted by feature, so one reduceat sums by feature
    sorted_leaf: np.ndarray  # leaf of each slot
    sorted_base: np.ndarray  # table offset of the slot's leaf + position of the feature
    sorted_width: np.ndarray  # M of the slot's leaf (values per pattern)
    feature_start: np.ndarray  # first sorted slot of each present feature
    present: np.ndarray  # the features with at least one slot
    table: np.ndarray  # all leaves' (2^M, M) tables, flattened
    trees: _TreeTables | None = None  # the same values per tree (small trees): what `contributions` uses
    forest: Forest | None = None  # the trees' split codes (`Forest.split_codes`) key the per-tree tables

    @classmethod
    def from_booster(cls, booster: Any, check: bool = True) -> TreeShap:
        """Tables for an xgboost Booster (its saved JSON), checked against `pred_contribs` unless
        `check` is False. Raises `Unsupported`."""
        shap = cls.from_forest(Forest.from_json(bytes(booster.save_raw(raw_format="json"))))
        if check:
            shap.check(booster)
        return shap

    @classmethod
    def from_forest(cls, forest: Forest) -> TreeShap:
        """Tables for the trees of `forest` (no xgboost). Raises `Unsupported` for trees too deep."""
        leaves: list[_Leaf] = []
        # plain lists: the walk reads single nodes, where numpy scalars cost ~10x a list item
        nodes = (forest.left.tolist(), forest.right.tolist(), forest.feature.tolist(),
                 forest.threshold.tolist(), forest.cover.tolist())
        for root in forest.tree_start[:-1].tolist():
            leaves.extend(_tree_leaves(nodes, root))
        leaves = [leaf for leaf in leaves if leaf.features]  # single-leaf trees: bias only
        widest = max((len(leaf.features) for leaf in leaves), default=0)
        size = sum((1 << len(leaf.features)) * len(leaf.features) for leaf in leaves)
        if widest > MAX_PATH_FEATURES or size > MAX_TABLE_VALUES:
            raise Unsupported(f"paths of up to {widest} features ({size:,} table values)")
        shap = cls._build(forest.n_features, _bias(forest), leaves, forest.feature, forest.threshold,
                          forest.default_left)
        starts = np.append(forest.split_start, len(forest.split_nodes))
        splits = [forest.split_nodes[a:b] for a, b in zip(starts[:-1], starts[1:])]
        return dataclasses.replace(shap, forest=forest, trees=_TreeTables.build(shap, splits))

    @classmethod
    def _build(cls, n_features: int, bias: float, leaves: list[_Leaf], node_feature: np.ndarray,
               node_threshold: np.ndarray, node_default_left: np.ndarray) -> TreeShap:
        tables = _tables(leaves)
        slot_leaf, slot_bit, slot_base, slot_width, slot_feature = [], [], [], [], []
        extras: list[tuple[int, int, bool]] = []
        first_steps: list[tuple[int, int, bool]] = []
        leaf_start, base = [], 0
        for index, leaf in enumerate(leaves):
            width = len(leaf.features)
            first = len(slot_leaf)
            leaf_start.append(first)
            for k, feature in enumerate(leaf.features):
                slot_leaf.append(index)
                slot_bit.append(1 << k)
                slot_base.append(base + k)
                slot_width.append(width)
                slot_feature.append(feature)
            seen: set[int] = set()
            for k, node, left in leaf.steps:  # path order: the first split on a feature makes its slot
                (extras if k in seen else first_steps).append((first + k, node, left))
                seen.add(k)
            base += (1 << width) * width
        first_steps.sort()  # slot order
        # repeated splits of one feature on a path, in passes with distinct slots each
        passes: list[list[tuple[int, int, bool]]] = []
        taken: list[set[int]] = []  # the slots of each pass (a slot appears once per pass)
        for slot, node, left in extras:
            for group, slots in zip(passes, taken):
                if slot not in slots:
                    group.append((slot, node, left))
                    slots.add(slot)
                    break
            else:
                passes.append([(slot, node, left)])
                taken.append({slot})
        slot_feature_arr = np.asarray(slot_feature, dtype=np.intp)
        order = np.argsort(slot_feature_arr, kind="stable")
        present, start = np.unique(slot_feature_arr[order], return_index=True)
        return cls(
            n_features=n_features,
            bias=bias,
            node_feature=node_feature,
            node_threshold=node_threshold,
            node_default_left=node_default_left,
            step_node=np.asarray([n for _, n, _ in first_steps], dtype=np.intp),
            step_left=np.asarray([left for _, _, left in first_steps], dtype=bool),
            extra=tuple((np.asarray([s for s, _, _ in g], dtype=np.intp), np.asarray([n for _, n, _ in g], dtype=np.intp),
                         np.asarray([left for _, _, left in g], dtype=bool)) for g in passes),
            slot_bit=np.asarray(slot_bit, dtype=np.int32),
            leaf_start=np.asarray(leaf_start, dtype=np.intp),
            sorted_leaf=np.asarray(slot_leaf, dtype=np.intp)[order],
            sorted_base=np.asarray(slot_base, dtype=np.int32)[order],
            sorted_width=np.asarray(slot_width, dtype=np.int32)[order],
            feature_start=start,
            present=present,
            table=tables,
        )

    def contributions(self, matrix: np.ndarray, codes: np.ndarray | None = None) -> np.ndarray:
        """(n, features + 1) TreeSHAP values in log-odds, the bias last (as `pred_contribs`);
        `codes`: the rows' `Forest.split_codes` when the caller has them already."""
        x = np.asarray(matrix, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"expected a matrix with {self.n_features} columns, got {x.shape}")
        n = len(x)
        out = np.zeros((n, self.n_features + 1))
        out[:, -1] = self.bias
        if n == 0 or len(self.sorted_leaf) == 0:
            return out
        x32 = x.astype(np.float32)  # xgboost compares in float32
        tables = self.trees if self.forest is not None else None
        if tables is not None and codes is None:
            codes = self.forest.split_codes(x32)
        # in blocks of rows: the temporaries of a whole 500-row request fall out of the CPU
        # caches (2x slower per row than in 64-row blocks, measured)
        for start in range(0, n, CHUNK_ROWS):
            block = slice(start, start + CHUNK_ROWS)
            if tables is not None:
                out[block, tables.present] = tables.present_values(codes[:, block])
            else:
                out[block, self.present] = self._present(x32[block])
        return out

    def _present(self, x32: np.ndarray) -> np.ndarray:
        """The contributions of the features with a slot (`present`), for a block of rows."""
        values = x32[:, self.node_feature]
        goes_left = np.where(np.isnan(values), self.node_default_left, values < self.node_threshold)
        return np.add.reduceat(self._slot_values(goes_left), self.feature_start, axis=1)

    def _slot_values(self, goes_left: np.ndarray) -> np.ndarray:
        """(rows, slots) each leaf's contribution to each of its path features (slots sorted by
        feature), from every node's decision per row."""
        follows = goes_left[:, self.step_node] == self.step_left  # (n, slots)
        for slots, nodes, left in self.extra:
            follows[:, slots] &= goes_left[:, nodes] == left
        pattern = np.add.reduceat(follows * self.slot_bit, self.leaf_start, axis=1, dtype=np.int32)  # (n, leaves)
        return self.table[self.sorted_base + pattern[:, self.sorted_leaf] * self.sorted_width]

    def check(self, booster: Any, rows: int = CHECK_ROWS, seed: int = 0) -> float:
        """Largest |difference| from xgboost's pred_contribs on rows at, just below and just
        above split thresholds, with missing values; raises `Unsupported` past the tolerance."""
        import xgboost as xgb

        x = check_rows(self, rows, seed)
        expected = booster.predict(xgb.DMatrix(x, nthread=1), pred_contribs=True, validate_features=False)
        if expected.shape != (len(x), self.n_features + 1):
            raise Unsupported(f"pred_contribs has shape {expected.shape}")
        worst = float(np.max(np.abs(self.contributions(x) - expected)))
        if not worst <= CHECK_TOLERANCE:
            raise Unsupported(f"differs from xgboost's pred_contribs by {worst:.3g} (tolerance {CHECK_TOLERANCE})")
        return worst


@dataclass(frozen=True)
class _TreeTables:
    """The leaf tables summed per tree: a tree's contribution to each of its features depends only
    on which way the row goes at each of its split nodes (k of them: a k-bit code), so for trees
    of at most MAX_TREE_SPLITS splits it is tabulated for all 2^k codes. A row then costs one
    comparison per split node and one lookup per (tree, feature) pair, instead of one per (leaf,
    path feature): ~3x fewer for depth-3 trees. The same sums as the leaf tables (to rounding)."""

    split_feature: np.ndarray  # (splits,) split nodes of all trees, tree by tree
    split_threshold: np.ndarray
    split_default_left: np.ndarray
    split_bit: np.ndarray  # (splits,) 1 << position of the node in its tree
    tree_start: np.ndarray  # (trees,) first split of each tree
    pair_base: np.ndarray  # (pairs,) table offset of each (tree, feature) pair, pairs sorted by feature
    pair_tree: np.ndarray  # (pairs,) the pair's tree
    feature_start: np.ndarray  # first pair of each present feature
    present: np.ndarray
    codes: int  # 2^(most splits in one tree): table values per pair
    table: np.ndarray  # (pairs, codes) flattened

    @classmethod
    def build(cls, shap: TreeShap, splits: list[np.ndarray]) -> _TreeTables | None:
        """From the leaf tables: every leaf evaluated for every code of its tree at once (row c
        of the scratch decisions = code c in every tree). None when a tree is too big."""
        most = max((len(nodes) for nodes in splits), default=0)
        codes = 1 << most
        if not splits or most > MAX_TREE_SPLITS or codes * len(shap.sorted_leaf) > MAX_SCRATCH_VALUES:
            return None
        tree_of_node = np.full(len(shap.node_feature), -1, dtype=np.intp)
        goes_left = np.zeros((codes, len(shap.node_feature)), dtype=bool)
        for tree, nodes in enumerate(splits):
            tree_of_node[nodes] = tree
            goes_left[:, nodes] = (np.arange(codes)[:, None] >> np.arange(len(nodes))[None, :]) & 1
        values = shap._slot_values(goes_left)  # (codes, slots), slots sorted by feature
        # a leaf's tree is its first split node's tree
        slot_tree = tree_of_node[shap.step_node[shap.leaf_start]][shap.sorted_leaf]
        slot_feature = np.repeat(shap.present, np.diff(np.append(shap.feature_start, len(shap.sorted_leaf))))
        # slots of one feature are in leaf order, hence tree order: each pair is a contiguous run
        new_pair = np.ones(len(slot_tree), dtype=bool)
        new_pair[1:] = (slot_tree[1:] != slot_tree[:-1]) | (slot_feature[1:] != slot_feature[:-1])
        pair_start = np.flatnonzero(new_pair)
        pair_feature = slot_feature[pair_start]
        present, feature_start = np.unique(pair_feature, return_index=True)
        all_splits = np.concatenate(splits)
        return cls(
            split_feature=shap.node_feature[all_splits],
            split_threshold=shap.node_threshold[all_splits],
            split_default_left=shap.node_default_left[all_splits],
            split_bit=np.concatenate([1 << np.arange(len(nodes), dtype=np.int32) for nodes in splits]),
            tree_start=np.cumsum([0] + [len(nodes) for nodes in splits[:-1]]).astype(np.intp),
            pair_base=(np.arange(len(pair_start)) * codes).astype(np.intp),
            pair_tree=slot_tree[pair_start],
            feature_start=feature_start,
            present=present,
            codes=codes,
            table=np.ascontiguousarray(np.add.reduceat(values, pair_start, axis=1).T).ravel(),
        )

    def present_values(self, codes: np.ndarray) -> np.ndarray:
        """The contributions of the `present` features for a block of rows, from their split
        codes ((split trees, rows), `Forest.split_codes`: the same bits as this table's codes)."""
        looked_up = self.table[self.pair_base[:, None] + codes[self.pair_tree]]  # (pairs, rows)
        return np.add.reduceat(looked_up, self.feature_start, axis=0).T


def check_rows(shap: TreeShap, rows: int = CHECK_ROWS, seed: int = 0) -> np.ndarray:
    """Rows whose values sit on, just below and just above the model's split thresholds (and are
    missing one time in ten): every branch of every split is taken by some row."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, shap.n_features))
    by_feature: dict[int, list[float]] = {}
    for feature, threshold in zip(shap.node_feature.tolist(), shap.node_threshold.tolist()):
        by_feature.setdefault(feature, []).append(threshold)
    for feature, values in by_feature.items():
        picks = np.asarray(values)[rng.integers(0, len(values), rows)]
        nudge = rng.choice([-1.0, 0.0, 1.0], rows) * np.maximum(np.abs(picks), 1.0) * 1e-3
        x[:, feature] = picks + nudge
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def _tree_leaves(nodes: tuple[list[Any], ...], root: int) -> list[_Leaf]:
    """Every leaf of the tree at `root` with its path (global node ids); `nodes` = the forest's
    left, right, feature, threshold (a leaf's value) and cover as lists."""
    left, right, split, value, cover = nodes
    leaves: list[_Leaf] = []
    # (node, path features, their zero fractions, steps)
    stack: list[tuple[int, list[int], list[float], list[tuple[int, int, bool]]]] = [(root, [], [], [])]
    while stack:
        node, feats, zero, steps = stack.pop()
        if left[node] == -1:
            leaves.append(_Leaf(float(value[node]), tuple(feats), tuple(zero), tuple(steps)))
            continue
        for child, went_left in ((left[node], True), (right[node], False)):
            fraction = cover[child] / cover[node] if cover[node] > 0 else 0.0
            f, z, s = list(feats), list(zero), list(steps)
            feature = split[node]
            if feature in f:
                k = f.index(feature)
                z[k] *= fraction
            else:
                k = len(f)
                f.append(feature)
                z.append(fraction)
            s.append((k, node, went_left))
            stack.append((child, f, z, s))
    return leaves


def _bias(forest: Forest) -> float:
    """The expected margin: base margin + each tree's cover-weighted mean leaf value (what
    pred_contribs puts in its last column; covers add up from the leaves to the root)."""
    leaf = forest.left == -1
    weighted = np.where(leaf, forest.threshold.astype(np.float64) * forest.cover, 0.0)
    per_tree = np.add.reduceat(weighted, forest.tree_start[:-1]) if forest.n_trees else np.zeros(0)
    root_cover = forest.cover[forest.tree_start[:-1]]
    means = np.divide(per_tree, root_cover, out=np.zeros_like(per_tree), where=root_cover > 0)
    return float(forest.base_margin) + float(means.sum())


def _tables(leaves: list[_Leaf]) -> np.ndarray:
    """Each leaf's contributions for every pattern, flattened leaf by leaf as (2^M, M) blocks."""
    blocks: list[np.ndarray | None] = [None] * len(leaves)
    by_width: dict[int, list[int]] = {}
    for index, leaf in enumerate(leaves):
        by_width.setdefault(len(leaf.features), []).append(index)
    for width, members in by_width.items():
        patterns = 1 << width
        # one[p, j] = 1 if pattern p follows the path at feature j
        one = ((np.arange(patterns)[:, None] >> np.arange(width)[None, :]) & 1).astype(np.float64)
        zero = np.asarray([leaves[i].zero for i in members])  # (L, M)
        value = np.asarray([leaves[i].value for i in members])  # (L,)
        weight = np.asarray([math.factorial(k) * math.factorial(width - k - 1) / math.factorial(width)
                             for k in range(width)])
        phi = np.empty((len(members), patterns, width))
        for i in range(width):
            coef = np.zeros((len(members), patterns, width))  # polynomial in t, degree < width
            coef[:, :, 0] = 1.0
            for j in range(width):
                if j == i:
                    continue
                shifted = np.zeros_like(coef)
                shifted[:, :, 1:] = coef[:, :, :-1] * one[None, :, j, None]
                coef = coef * zero[:, None, j, None] + shifted
            total = coef @ weight  # (L, P)
            phi[:, :, i] = value[:, None] * (one[None, :, i] - zero[:, None, i]) * total
        for position, index in enumerate(members):
            blocks[index] = phi[position].ravel()
    return np.concatenate(blocks) if blocks else np.empty(0)
