"""mypy plugin: calling a factory_boy factory gives its model, as `Factory.create()` does.

factory_boy types `DjangoModelFactory[Model].create()` but not the call `ModelFactory(...)`
(its metaclass `__call__` is untyped), which the tests use everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.maptype import map_instance_to_supertype
from mypy.nodes import TypeInfo
from mypy.plugin import FunctionContext, Plugin
from mypy.types import Instance, Type, get_proper_type

BASE_FACTORY = "factory.base.BaseFactory"


def _model_of(ctx: FunctionContext) -> Type:
    made = get_proper_type(ctx.default_return_type)
    if not isinstance(made, Instance) or not made.type.has_base(BASE_FACTORY):
        return ctx.default_return_type
    base = next(info for info in made.type.mro if info.fullname == BASE_FACTORY)
    model = map_instance_to_supertype(made, base).args
    return model[0] if model else ctx.default_return_type


class FactoryPlugin(Plugin):
    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        found = self.lookup_fully_qualified(fullname)
        node = found.node if found is not None else None
        return _model_of if isinstance(node, TypeInfo) and node.has_base(BASE_FACTORY) else None


def plugin(version: str) -> type[Plugin]:
    return FactoryPlugin
