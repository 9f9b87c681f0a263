"""Fusion on a traced graph: conv [-> BatchNorm] [-> activation] [-> residual add]
[-> activation] chains become one call of a fused module.

A chain grows one step at a time, and only through a value that has exactly one use: a
conv output read elsewhere, an activation output that is also kept, an add result that
is reused, all keep their unfused meaning. The fused call takes the place of the chain's
last node (the add, for a residual block), where all its inputs exist. Moving the conv
that far is safe only if nothing in between writes in place (an inplace ReLU, x.add_)
to what the conv reads, so a chain stops before any such node. When both operands of an
add are chains, the left one takes the add (`out + identity`: the block's main path).
"""
import bisect
from dataclasses import dataclass
from typing import Optional

from torch import fx, nn

from .activations import is_in_place, node_kind, residual_add
from .folding import bn_refusal, build_fused, conv_refusal, is_conv, pattern_name
from .identities import drop_identities


@dataclass
class Chain:
    conv: fx.Node
    bn: Optional[fx.Node] = None
    act: Optional[fx.Node] = None
    act_kind: Optional[str] = None
    add: Optional[fx.Node] = None
    residual_index: Optional[int] = None  # which operand of `add` is the residual
    post: Optional[fx.Node] = None
    post_kind: Optional[str] = None

    @property
    def nodes(self):
        return [n for n in (self.conv, self.bn, self.act, self.add, self.post) if n is not None]

    @property
    def last(self):
        return self.nodes[-1]


def _uses(user, value):
    """How many times `user` reads `value` (x + x reads it twice)."""
    count = 0

    def visit(node):
        nonlocal count
        count += node is value
        return node

    fx.node.map_arg((user.args, user.kwargs), visit)
    return count


class GraphFusion:
    """One pass over a GraphModule `gm`; module names in the report get `prefix`."""

    def __init__(self, gm, prefix, report, channels_last):
        self.gm, self.graph = gm, gm.graph
        self.prefix, self.report, self.channels_last = prefix, report, channels_last
        self.modules = dict(gm.named_modules())
        self.nodes = list(self.graph.nodes)
        self.order = {n: i for i, n in enumerate(self.nodes)}
        self.in_place = [i for n, i in self.order.items() if is_in_place(n, self.modules)]
        self.calls = {}
        for n in self.graph.nodes:
            if n.op == "call_module":
                self.calls[n.target] = self.calls.get(n.target, 0) + 1

    def run(self):
        chains = [c for c in map(self._head_chain, self.nodes) if c is not None]
        self._attach_adds(chains)
        self._report_transposed()
        for chain in chains:
            self._rewrite(chain)
        self._report_unfolded_batchnorms()
        self.gm.delete_all_unused_submodules()
        self.graph.lint()
        self.gm.recompile()
        return self.gm

    # ------------------------------------------------------------------ names

    def _name(self, node):
        return self.prefix + (node.target if node.op == "call_module" else node.name)

    def _module(self, node):
        return self.modules.get(node.target) if node.op == "call_module" else None

    def _chain_name(self, chain):
        conv = chain.conv.target
        parent = conv.rpartition(".")[0]
        steps = [self.prefix + conv]
        if chain.bn is not None:
            bn_parent, _, bn_leaf = chain.bn.target.rpartition(".")
            steps.append(bn_leaf if bn_parent == parent else self.prefix + chain.bn.target)
        steps += [chain.act_kind] if chain.act_kind else []
        steps += ["add"] if chain.add is not None else []
        steps += [chain.post_kind] if chain.post_kind else []
        return "+".join(steps)

    # ------------------------------------------------------------------ growing chains

    def _is_bn(self, node, value):
        return (type(self._module(node)) is nn.BatchNorm2d and node.args == (value,)
                and not node.kwargs)

    def _activation(self, node, value):
        source, kind = node_kind(node, self.modules)
        return kind if source is value else None

    def _is_add(self, node, value):
        operands = residual_add(node)
        return operands is not None and value in operands[:2]

    def _blocker(self, chain, user):
        """An in-place node between the chain's conv and `user` that is not in the chain."""
        lo = bisect.bisect_right(self.in_place, self.order[chain.conv])
        hi = bisect.bisect_left(self.in_place, self.order[user])
        members = {self.order[n] for n in chain.nodes}
        return next((i for i in self.in_place[lo:hi] if i not in members), None)

    def _step_name(self, chain, node):
        """A report name for a node the chain could not absorb: a module's own name, else
        the node's name after the conv it would have joined."""
        if node.op == "call_module":
            return self._name(node)
        return f"{self.prefix}{chain.conv.target} -> {node.name}"

    def _follow(self, chain, accepts, step):
        """(the next node of the chain, None) when the one user of its last value is
        accepted and the step is safe; (None, why not) when a wanted step cannot be
        taken; (None, None) when there is no such step."""
        value = chain.last
        wanted = [u for u in value.users if accepts(u, value)]
        if not wanted:
            return None, None
        user = wanted[0]
        uses = sum(_uses(u, value) for u in value.users)
        if uses > 1:
            return None, (user, f"{_describe(chain)} output has {uses} users: {step} not fused")
        blocker = self._blocker(chain, user)
        if blocker is not None:
            where = self._step_name(chain, self.nodes[blocker])
            return None, (user, f"in-place {where} runs between the conv and this {step}: "
                                "not fused")
        return user, None

    def _take(self, chain, accepts, step):
        """_follow, reporting a refusal at once."""
        user, refusal = self._follow(chain, accepts, step)
        if refusal is not None:
            self.report.add_left(self._step_name(chain, refusal[0]), refusal[1])
        return user

    def _take_activation(self, chain):
        """(activation node, its kind) that can join the chain, or (None, None)."""
        act = self._take(chain, lambda u, v: self._activation(u, v) is not None, "activation")
        if act is None:
            return None, None
        module = self._module(act)
        if module is not None and module.training:  # explicitly kept so: not ours to fuse
            self.report.add_left(self._name(act), f"{type(module).__name__} in train mode")
            return None, None
        return act, self._activation(act, chain.last)

    def _head_chain(self, node):
        """conv [-> bn] [-> activation] starting at `node`, or None if node is no fusable conv."""
        conv = self._module(node)
        if conv is None or not is_conv(conv):
            return None
        reason = conv_refusal(conv)
        if reason is None and (len(node.args) != 1 or node.kwargs):
            reason = "called with arguments besides its input"
        if reason is not None:
            self.report.add_left(self._name(node), reason)
            return None
        chain = Chain(node)
        bn = self._take(chain, self._is_bn, "BatchNorm2d")
        if bn is not None:
            reason = bn_refusal(self._module(bn), conv)
            if reason is not None:
                self.report.add_left(self._name(bn), reason + ": not folded")
                return chain
            chain.bn = bn
        chain.act, chain.act_kind = self._take_activation(chain)
        return chain

    def _attach_adds(self, chains):
        """Extends chains through residual adds (and an activation after the add). An add
        that one operand's chain cannot take may still be taken by the other's, so refusals
        are reported only for adds that no chain takes."""
        offers, refusals = {}, {}  # add node -> [(chain, operand index)] / [(name, reason)]
        for chain in chains:
            add, refusal = self._follow(chain, self._is_add, "add")
            if add is not None and add.args[0] is not chain.last and residual_add(add)[2]:
                add, refusal = None, (add, "in-place add writes to the other operand, not to "
                                           "the conv output: not fused")
            if add is not None:
                offers.setdefault(add, []).append((chain, 0 if add.args[0] is chain.last else 1))
            elif refusal is not None:
                refusals.setdefault(refusal[0], []).append(
                    (self._step_name(chain, refusal[0]), refusal[1]))
        for add, options in offers.items():
            chain, index = min(options, key=lambda option: option[1])  # the left operand first
            chain.add, chain.residual_index = add, 1 - index
            chain.post, chain.post_kind = self._take_activation(chain)
        for add, entries in refusals.items():
            if add not in offers:
                for name, reason in entries:
                    self.report.add_left(name, reason)

    # ------------------------------------------------------------------ rewriting

    def _fused_target(self, conv_target):
        """Where the fused module goes: in the conv's place when that conv is called once,
        else (shared weights) under a new name beside it."""
        if self.calls[conv_target] == 1:
            return conv_target
        k = 1
        while f"{conv_target}_fused{k}" in self.modules:
            k += 1
        self.modules[f"{conv_target}_fused{k}"] = None
        return f"{conv_target}_fused{k}"

    def _rewrite(self, chain):
        conv = self._module(chain.conv)
        bn = self._module(chain.bn) if chain.bn is not None else None
        fused = build_fused(conv, bn, chain.act_kind, chain.post_kind, self.channels_last)
        target = self._fused_target(chain.conv.target)
        self.gm.add_submodule(target, fused)
        args = [chain.conv.args[0]]
        if chain.add is not None:  # read now: an earlier rewrite may have replaced it
            args.append(chain.add.args[chain.residual_index])
        with self.graph.inserting_before(chain.last):
            call = self.graph.call_module(target, tuple(args))
        chain.last.replace_all_uses_with(call)
        for node in reversed(chain.nodes):
            self.graph.erase_node(node)
        self.report.add_fused(self._chain_name(chain),
                              pattern_name(conv, bn, chain.act_kind, chain.add, chain.post_kind))

    # ------------------------------------------------------------------ what stays

    def _report_transposed(self):
        for node in self.graph.nodes:
            if isinstance(self._module(node), nn.ConvTranspose2d):
                for user in node.users:
                    if self._is_bn(user, node):
                        self.report.add_left(self._name(user), "after a ConvTranspose2d: transposed "
                                                               "convolutions are not fused")

    def _report_unfolded_batchnorms(self):
        reported = {entry.name for entry in self.report.left}
        for node in self.graph.nodes:
            if type(self._module(node)) is nn.BatchNorm2d and self._name(node) not in reported:
                self.report.add_left(self._name(node), "BatchNorm2d not directly after a "
                                                       "fusable convolution")


def _describe(chain):
    """What the chain's last value is, for the report."""
    if chain.add is not None:
        return "activation" if chain.post is not None else "add"
    if chain.act is not None:
        return "activation"
    return "BatchNorm" if chain.bn is not None else "conv"


def fuse_graph(gm, prefix, report, channels_last):
    """Fuses every conv chain of the GraphModule `gm` in place; returns gm."""
    drop_identities(gm)
    return GraphFusion(gm, prefix, report, channels_last).run()
