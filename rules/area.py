"""The rules area: rules.toml beside the venue config, the rules service, its local API routes."""

from __future__ import annotations

import functools
import logging
import os

from edge_agent.area import Area, AreaContext
from edge_agent.config.model import VenueConfig
from edge_agent.supervisor import Service
from rules import api
from rules.model import RuleFile, load_rules, venue_rules_path
from rules.service import RulesService

log = logging.getLogger(__name__)


def load_venue_rules(config: VenueConfig, path: str | None = None) -> RuleFile:
    """rules.toml next to the venue config (or `path`); no file at all means no rules."""
    path = path or venue_rules_path(config.source or ".")
    if not os.path.exists(path):
        log.info("rules: no rule file at %s; HACCP and alarms are off", path)
        return RuleFile()
    return load_rules(path, config.venue.food_safety_region)


def build(ctx: AreaContext, path: str | None = None) -> Area:
    # A ValidationError propagates: the agent refuses to start rather than run half a rule set.
    rule_file = load_venue_rules(ctx.config, path)
    svc = RulesService(
        ctx.bus,
        ctx.writer,
        ctx.clock,
        rule_file,
        timezone=ctx.config.venue.timezone,
        region=ctx.config.venue.food_safety_region,
        venue=ctx.config.venue.name,
    )
    services = [Service("rules", svc.run, stop=svc.stop, restart=True)]
    if rule_file.notify.recipients:
        from rules.notify.service import Notifier

        notifier = Notifier(
            ctx.writer, ctx.clock, rule_file.notify, ctx.config.venue.timezone, ctx.bus.publish
        )
        svc.on_notify = notifier.wake
        svc.notifier = notifier
        services.append(Service("notifier", notifier.run, restart=True))
    return Area(
        "rules",
        services=services,
        routes=[functools.partial(api.add_routes, ctx=ctx)],
        shared={api.RULES_SERVICE: svc},
    )
