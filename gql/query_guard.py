"""Checks every operation passes before it is validated or executed, on every transport.

One linear pass over the document (each fragment is analysed once and memoised, so a
fragment spread three times by each of twenty nested fragments costs twenty visits, not
3^20) measures depth, aliases and cost, finds the root fields the caller's scopes must
allow, and refuses strings PostgreSQL cannot store. Only an operation that passes is
validated by graphql-core (whose result is cached by query text) and then executed.

Cost is what an operation may make the server do: every field costs 1, and the fields
below a field with a ``first`` argument count ``first`` times, so nested connections
multiply: ``user { interactions(first: 100) { nodes { user { interactions(first: 100)``
costs over 10,000.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    get_operation_ast,
    value_from_ast_untyped,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from engines.errors import ErrorCode
from gql.errors import RequestCode

#: ceiling of intermediate cost figures, so a hostile document cannot build huge integers
COST_CEILING = 10**15


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_cost: int = 20_000
    max_input_depth: int = 32
    #: values in a query's variables (a query names at most a batch of ids, and a few more)
    max_query_values: int = 50_000
    max_repeated_branches: int = 30


@dataclass(slots=True)
class Analysis:
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    root_fields: frozenset[str] = frozenset()
    problems: list[GraphQLError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the guard needs of one selection set, fragments expanded."""

    depth: int = 0
    cost: int = 0
    names: frozenset[str] = frozenset()
    #: response names of fields with sub-selections: how often each is selected here, and
    #: the largest merge load below it (repeats nested in repeats multiply)
    branches: dict[str, tuple[int, int]] = field(default_factory=dict)


class _Walker:
    """Depth, cost, root fields and repeated branches of one operation, each fragment
    visited once."""

    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        variables: Mapping[str, Any],
    ) -> None:
        self.schema = schema
        self.variables = variables
        #: defaults of the operation's variables (`query($n: Int = 100)`), as values
        self.defaults = {
            d.variable.name.value: value_from_ast_untyped(d.default_value)
            for d in operation.variable_definitions or ()
            if d.default_value is not None
        }
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.memo: dict[str, _Shape] = {}
        self.active: set[str] = set()
        self.cycle: str | None = None
        self.most_repeated: tuple[int, str] = (0, "")

    def selection(self, node: SelectionSetNode | None, parent: GraphQLNamedType | None) -> _Shape:
        if node is None:
            return _Shape()
        depth, cost, names = 0, 0, set()
        branches: dict[str, tuple[int, int]] = {}

        def add(name: str, count: int, below: int) -> None:
            had, deepest = branches.get(name, (0, 1))
            branches[name] = (had + count, max(deepest, below))

        for sel in node.selections or ():
            if isinstance(sel, FieldNode):
                d, c, below = self.field(sel, parent)
                names.add(sel.name.value)
                if sel.selection_set is not None:
                    add((sel.alias or sel.name).value, 1, below)
            else:
                if isinstance(sel, InlineFragmentNode):
                    target = parent
                    if sel.type_condition is not None:
                        target = self.schema.get_type(sel.type_condition.name.value)
                    inner = self.selection(sel.selection_set, target)
                elif isinstance(sel, FragmentSpreadNode):
                    inner = self.fragment(sel.name.value)
                else:  # pragma: no cover - graphql-core has no other selection kinds
                    continue
                d, c = inner.depth, inner.cost
                names |= inner.names
                for name, (count, below) in inner.branches.items():
                    add(name, count, below)
            depth = max(depth, d)
            cost = min(cost + c, COST_CEILING)
        for name, (count, below) in branches.items():
            self.most_repeated = max(self.most_repeated, (min(count * below, COST_CEILING), name))
        return _Shape(depth, cost, frozenset(names), branches)

    @staticmethod
    def load(shape: _Shape) -> int:
        """How many same-named selections meet in validation's merge check below here."""
        return max((min(c * b, COST_CEILING) for c, b in shape.branches.values()), default=1)

    def fragment(self, name: str) -> _Shape:
        if name in self.memo:
            return self.memo[name]
        definition = self.fragments.get(name)
        if definition is None:  # validation reports unknown fragments
            return _Shape()
        if name in self.active:
            self.cycle = name
            return _Shape()
        self.active.add(name)
        target = self.schema.get_type(definition.type_condition.name.value)
        result = self.selection(definition.selection_set, target)
        self.active.discard(name)
        self.memo[name] = result
        return result

    def field(self, node: FieldNode, parent: GraphQLNamedType | None) -> tuple[int, int, int]:
        """(depth, cost, merge load) of one field and what it selects."""
        definition = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(node.name.value)
        child_type = get_named_type(definition.type) if definition is not None else None
        inner = self.selection(node.selection_set, child_type)
        times = 1
        if definition is not None and "first" in definition.args:
            times = max(1, self.first_of(node, definition.args["first"].default_value))
        return inner.depth + 1, min(1 + times * inner.cost, COST_CEILING), self.load(inner)

    def first_of(self, node: FieldNode, default: Any) -> int:
        for arg in node.arguments or ():
            if arg.name.value != "first":
                continue
            value = arg.value
            if isinstance(value, IntValueNode):
                return _as_int(value.value)
            if isinstance(value, VariableNode):
                name = value.name.value
                if name in self.variables:
                    return _as_int(self.variables[name])
                return _as_int(self.defaults.get(name, default))
        return _as_int(default)


def _as_int(value: Any) -> int:
    try:
        return max(0, min(int(value), COST_CEILING))
    except (TypeError, ValueError, OverflowError):
        return 1


def count_aliases(document: DocumentNode) -> int:
    """Aliases as written in the document (each once, however often it is spread)."""
    count = 0
    for node in _nodes(document):
        if isinstance(node, FieldNode) and node.alias is not None:
            count += 1
    return count


def _nodes(root: Node) -> Iterator[Node]:
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Node):
            yield node
            for key in node.keys:
                if key != "loc":
                    stack.append(getattr(node, key, None))
        elif isinstance(node, tuple | list):
            stack.extend(node)


def bad_string(value: str) -> str | None:
    """Why PostgreSQL could not store ``value`` (None when it can)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode)"
    return None


def _literal_problems(document: DocumentNode, max_depth: int, strings: bool) -> list[GraphQLError]:
    problems = []
    for node in _nodes(document):
        if isinstance(node, StringValueNode) and strings:
            why = bad_string(node.value)
            if why is not None:
                problems.append(_error(f"a string argument {why}", ErrorCode.INVALID))
        elif isinstance(node, ObjectValueNode | ListValueNode) and _literal_depth(node) > max_depth:
            problems.append(
                _error(f"an argument is nested deeper than {max_depth} levels", ErrorCode.TOO_DEEP)
            )
            break
    return problems[:1]


def _literal_depth(node: Node) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(current, ObjectValueNode):
            stack.extend((f.value, depth + 1) for f in current.fields)
        elif isinstance(current, ListValueNode):
            stack.extend((v, depth + 1) for v in current.values)
    return deepest


def variable_problems(
    variables: Any, max_depth: int, max_values: int = 100_000
) -> list[GraphQLError]:
    """Strings PostgreSQL cannot store, JSON nested too deep, and more values than a query
    may carry, named by their path."""
    if not variables:
        return []
    if not isinstance(variables, Mapping):
        return [_error("variables must be an object", field="variables")]
    stack: list[tuple[Any, tuple[str, ...]]] = [(v, ("$" + k,)) for k, v in variables.items()]
    seen = 0
    while stack:
        seen += 1
        if seen > max_values:
            return [
                _error(
                    f"the variables of a query hold more than {max_values:,} values",
                    ErrorCode.TOO_MANY,
                    "variables",
                )
            ]
        value, path = stack.pop()
        where = ".".join(path)
        if len(path) > max_depth + 1:
            return [
                _error(
                    f"variable {where} is nested deeper than {max_depth} levels",
                    ErrorCode.TOO_DEEP,
                    where,
                )
            ]
        if isinstance(value, str):
            why = bad_string(value)
            if why is not None:
                return [_error(f"variable {where} {why}", field=where)]
        elif isinstance(value, dict):
            for k, v in value.items():
                why = bad_string(k)
                if why is not None:
                    return [_error(f"a key of variable {where} {why}", field=where)]
                stack.append((v, (*path, k)))
        elif isinstance(value, list):
            stack.extend((v, (*path, str(n))) for n, v in enumerate(value))
    return []


def analyse(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    limits: QueryLimits,
) -> Analysis:
    walker = _Walker(schema, document, operation, variables or {})
    root = schema.get_root_type(operation.operation)
    shape = walker.selection(operation.selection_set, root)
    depth, cost = shape.depth, shape.cost
    out = Analysis(depth=depth, aliases=count_aliases(document), cost=cost, root_fields=shape.names)
    if walker.cycle is not None:
        out.problems.append(
            _error(f"fragment {walker.cycle} spreads itself", RequestCode.GRAPHQL_VALIDATION_FAILED)
        )
    if depth > limits.max_depth:
        out.problems.append(
            _error(
                f"query exceeds maximum operation depth of {limits.max_depth} (it has {depth})",
                RequestCode.QUERY_TOO_DEEP,
            )
        )
    repeats, name = walker.most_repeated
    if repeats > limits.max_repeated_branches:
        # merging same-named selections is quadratic in graphql-core's validation, and
        # repeats nested in repeats multiply
        out.problems.append(
            _error(
                f"{name} is selected {repeats} times over, counting repeats nested in "
                f"repeats (at most {limits.max_repeated_branches}); select it once",
                RequestCode.GRAPHQL_VALIDATION_FAILED,
            )
        )
    if out.aliases > limits.max_aliases:
        out.problems.append(
            _error(
                f"{out.aliases} aliases; at most {limits.max_aliases} are allowed",
                RequestCode.TOO_MANY_ALIASES,
            )
        )
    if cost > limits.max_cost:
        shown = f"{cost:,}" if cost < COST_CEILING else f"over {COST_CEILING:,}"
        out.problems.append(
            _error(
                f"query cost {shown} exceeds the limit of {limits.max_cost:,}: ask for fewer "
                "items (`first`) in nested lists",
                RequestCode.QUERY_TOO_COSTLY,
            )
        )
    # Mutations check what they store row by row (a bad row of a bulk call is reported in
    # userErrors while the others are written), and their variables may be large; a query's
    # variables are walked here, within a budget.
    query = operation.operation.value != "mutation"
    depth_limit = limits.max_input_depth if query else limits.max_input_depth * 4
    out.problems += _literal_problems(document, depth_limit, strings=query)
    if query:
        out.problems += variable_problems(variables, depth_limit, limits.max_query_values)
    return out


def _error(
    message: str, code: ErrorCode | RequestCode = ErrorCode.INVALID, field: str | None = None
) -> GraphQLError:
    extensions: dict[str, Any] = {"code": code.value}
    if field is not None:
        extensions["field"] = field
    return GraphQLError(message, extensions=extensions)


#: who may run what; returns the reason for a refusal, or None
Authorise = Callable[[Any, str, frozenset[str]], str | None]


#: a cached analysis key holds at most this much query text and variable text
ANALYSIS_KEY_CHARS = 4_000
ANALYSIS_KEY_VARIABLES = 16


def _analysis_key(
    query: str | None, operation: OperationDefinitionNode, variables: Mapping[str, Any] | None
) -> tuple[Any, ...] | None:
    """A bounded key (query text, operation, the declared variables' types and values), or
    None when the request is not worth remembering (long, or with lists, objects or
    undeclared variables)."""
    if query is None or len(query) > ANALYSIS_KEY_CHARS:
        return None
    declared = {d.variable.name.value for d in operation.variable_definitions or ()}
    given = variables or {}
    if len(given) > ANALYSIS_KEY_VARIABLES or not declared.issuperset(given):
        return None
    size = len(query)
    values = []
    for name in sorted(given):
        value = given[name]
        if value is not None and not isinstance(value, str | int | float | bool):
            return None  # lists and objects: analysed each time
        size += len(name) + (len(value) if isinstance(value, str) else 24)
        if size > ANALYSIS_KEY_CHARS:
            return None
        values.append((name, type(value).__name__, value))
    op_name = operation.name.value if operation.name else None
    return (query, op_name, tuple(values))


class QueryGuard(SchemaExtension):
    """Runs :func:`analyse` and the caller's scope check, then graphql-core's validation
    (cached by query text). It replaces the validation step, so strawberry's own
    validation cache must not be installed beside it."""

    def __init__(
        self,
        limits: QueryLimits,
        authorise: Authorise,
        cache: LRUCache[str, list[GraphQLError]],
        on_cache: Callable[[str], None] = lambda result: None,
        analyses: LRUCache[tuple[Any, ...], Analysis] | None = None,
    ) -> None:
        super().__init__()
        self.limits = limits
        self.authorise = authorise
        self.cache = cache
        self.on_cache = on_cache
        self.analyses = analyses if analyses is not None else LRUCache(maxsize=1)

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        operation = get_operation_ast(document, ctx.operation_name) if document else None
        if document is not None and operation is not None:
            schema = ctx.schema._schema
            analysis = self._analyse(schema, document, operation, ctx.query, ctx.variables)
            errors = list(analysis.problems)
            if not errors:
                reason = self.authorise(
                    ctx.context, operation.operation.value, analysis.root_fields
                )
                if reason is not None:
                    errors = [_error(reason, ErrorCode.FORBIDDEN)]
            if not errors:
                errors = self._validate(schema, document, ctx.query, tuple(ctx.validation_rules))
            ctx.pre_execution_errors = errors
        yield

    def _analyse(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        operation: OperationDefinitionNode,
        query: str | None,
        variables: Mapping[str, Any] | None,
    ) -> Analysis:
        """:func:`analyse`, remembered for a query text with a few short scalar variables
        (the common request, sent again and again with another user id): the analysis does
        not depend on the caller, only on the document and its variables."""
        key = _analysis_key(query, operation, variables)
        if key is None:
            return analyse(schema, document, operation, variables, self.limits)
        hit = self.analyses.get(key)
        if hit is None:
            hit = analyse(schema, document, operation, variables, self.limits)
            self.analyses[key] = hit
        return hit

    def _validate(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        query: str | None,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> list[GraphQLError]:
        if query is None:
            return validate_document(schema, document, rules)
        hit = self.cache.get(query)
        if hit is None:
            self.on_cache("miss")
            hit = validate_document(schema, document, rules)
            self.cache[query] = hit
        else:
            self.on_cache("hit")
        return hit
