"""Policies: decisions over read-only views, never touching the engine.

A policy is a small class registered by kind and name (:func:`register`); a scenario
names it in a ``PolicySpec`` and the engine builds it with :func:`create`, handing it its
own random generator. For each decision the engine passes a read-only view of its state
(:class:`RoutingView` for routing), validates the answer and applies it. Policies that
live outside Meridian load from ``package.module:ClassName``. See ``docs/policies.md``.

Public: ``register``, ``create``, ``available``, ``describe``, ``declare_kind``,
``PolicyParams``, ``RoutingView``, ``RoutingPolicy`` and the built-in routing policies
``Nearest``, ``RoundRobin``, ``Weighted``, ``LeastLoaded``, ``LatencyAware``, ``PowerOfTwo``.
"""
from __future__ import annotations

from sim.policies.registry import (PolicyParams, available, create, declare_kind, describe,
                                   register)
from sim.policies.routing import (LatencyAware, LeastLoaded, Nearest, PowerOfTwo, RoundRobin,
                                  RoutingPolicy, Weighted)
from sim.policies.views import RoutingView

__all__ = [
    "register", "create", "available", "describe", "declare_kind", "PolicyParams",
    "RoutingView", "RoutingPolicy", "Nearest", "RoundRobin", "Weighted", "LeastLoaded",
    "LatencyAware", "PowerOfTwo",
]
