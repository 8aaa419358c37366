"""Policies: decisions over read-only views, never touching the engine.

A policy is a small class registered by kind and name (:func:`register`); a scenario
names it in a ``PolicySpec`` and the engine builds it with :func:`create`, handing it its
own random generator. For each decision the engine passes a read-only view of its state
(:class:`RoutingView` for routing, :class:`PlacementView` for placement), validates the
answer and applies it (:func:`validate_assignments` for placement). Policies that
live outside Meridian load from ``package.module:ClassName``. See ``docs/policies.md``.

Public: ``register``, ``create``, ``available``, ``describe``, ``declare_kind``, ``kinds``,
``PolicyParams``, ``RoutingView``, ``RoutingPolicy`` and the built-in routing policies
``Nearest``, ``RoundRobin``, ``Weighted``, ``LeastLoaded``, ``LatencyAware``, ``PowerOfTwo``,
``TtftAware``, ``CacheAware``;
for placement the view ``PlacementView``, ``PoolSlot``, ``QueuedJob``, ``RunningJob``,
``Assignment``, ``validate_assignments``, the bases ``PlacementPolicy``, ``RankedPlacement``,
the helper ``gang_fit`` and the built-ins ``FifoFirstFit``, ``DataLocal``,
``LeastLoadedPlacement``, ``Cheapest``, ``Greenest``, ``EasyBackfill``; for allocation
``AllocationPolicy``, ``Proportional`` (the seed's model) and ``Packed``; for autoscaling
the view ``AutoscaleView``, the base ``AutoscalingPolicy`` and ``TargetUtilization``,
``TtftSlo``, ``AllocationModel``.
"""
from __future__ import annotations

from sim.policies.allocation import AllocationPolicy, Packed, Proportional
from sim.policies.autoscaling import AllocationModel, AutoscalingPolicy, TargetUtilization, TtftSlo
from sim.policies.placement import (
    Cheapest,
    DataLocal,
    EasyBackfill,
    FifoFirstFit,
    Greenest,
    LeastLoadedPlacement,
    PlacementPolicy,
    RankedPlacement,
    gang_fit,
)
from sim.policies.placement_view import Assignment, PlacementView, PoolSlot, QueuedJob, RunningJob, validate_assignments
from sim.policies.registry import PolicyParams, available, create, declare_kind, describe, kinds, locate, register
from sim.policies.routing import LatencyAware, LeastLoaded, Nearest, PowerOfTwo, RoundRobin, RoutingPolicy, Weighted
from sim.policies.views import AutoscaleView, RoutingView

__all__ = [
    "register", "create", "locate", "available", "describe", "declare_kind", "kinds", "PolicyParams",
    "RoutingView", "RoutingPolicy", "Nearest", "RoundRobin", "Weighted", "LeastLoaded",
    "LatencyAware", "PowerOfTwo", "TtftAware", "CacheAware",
    "PlacementView", "PoolSlot", "QueuedJob", "RunningJob", "Assignment", "validate_assignments",
    "PlacementPolicy", "RankedPlacement", "gang_fit", "FifoFirstFit", "DataLocal",
    "LeastLoadedPlacement", "Cheapest", "Greenest", "EasyBackfill",
    "AllocationPolicy", "Proportional", "Packed",
    "AutoscaleView", "AutoscalingPolicy", "TargetUtilization", "TtftSlo", "AllocationModel",
]
