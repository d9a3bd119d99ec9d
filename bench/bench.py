"""Benchmark: this addon's workflows against hand-written changes and Odoo's Automation Rules.

Run by ``make bench`` on a fresh database with crm, base_automation and this addon.
Every measurement runs in its own transaction, rolled back afterwards, so that each
starts from the same data; the ORM and registry caches are warmed by one discarded run,
and the best of the measured runs is kept. Each line gives milliseconds, SQL queries, the
ratio to a plain write (the stage alone, no automation) and, for a workflow, the ratio to
its *reference*: the same change written by hand in the user's own write.
"""

import argparse
import cProfile
import gc
import pstats
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg2

import odoo
from odoo import SUPERUSER_ID, Command, api, fields
from odoo.modules.registry import Registry

SINGLE_WRITES = 200
SHAPES = ("batch", "single")  # one write of all the leads; single-record writes, per write
# Timed writes per shape and round: a few, as a moment of the shared machine's noise can spoil
# one (a batch takes a fraction of a second, the 200 single writes two seconds)
SAMPLES = {"batch": 3, "single": 3}
IDLE_WORKFLOWS = 500
IDLE_RULES = 50  # base_automation's idle rules: 500 of them would take a quarter of an hour
PRIORITY = "2"  # the choice that "set a field" writes
# Targets of issue 13: a matching workflow against its reference, idle workflows against a plain write
MATCH_TARGET = 1.25
IDLE_TARGET = 1.05
IDLE_MAX_EXTRA_QUERIES = 0
# The tables the measured writes change, rolled back
VACUUMED_TABLES = ("crm_lead", "crm_tag_rel", "workflow_automation_run", "workflow_automation_firing",
                   "mail_followers", "mail_message", "mail_tracking_value")
BENCH_DIR = Path(__file__).resolve().parent
ADDON_DIR = BENCH_DIR.parent
FINAL_FLUSH = ("flush_all", "_write_batch")  # the bench's flush at the end of the user's write
# Where the engine's time goes in a matching write: (label, the addon's functions), for a
# folded write, then for the ordinary way (which a folded write takes when it cannot fold)
ENGINE_PARTS = (
    ("finding the matches (lookup, snapshot, fold plan)",
     ("_workflow_events_for", "_workflow_snapshot", "_workflow_fold_plan")),
    ("folded: the user's and the actions' values written", ("_workflow_write_folded",)),
    ("  of which the model's own write", ("_workflow_write_unhooked",)),
    ("folded: the run rows, done (prepared, one insert)", ("_workflow_record_folded",)),
    ("ordinary way: running the matches", ("_workflow_run_matches",)),
    ("  run rows (bulk insert, then outcomes)", ("_insert", "_record_outcomes")),
    ("  the actions, held or isolated as needed", ("_perform",)),
)


@dataclass(frozen=True)
class Fixture:
    """The ids that the workflows, the references and the effect checks refer to."""

    user_id: int  # the owner that "assign a user" sets, a member of the leads' pipeline
    other_team_id: int  # the team that "assign a team" sets
    tag_id: int
    stage_to_id: int  # the stage that the user's write moves the leads to
    stage_final_id: int  # the stage that "move to a stage" sets next
    priority_field_id: int
    priority_choice_id: int


@dataclass(frozen=True)
class ActionKind:
    """An action kind that writes fields: the action, the same change by hand, and its effect."""

    code: str
    label: str
    action: Callable  # (fixture) -> the action's values
    reference: Callable  # (fixture) -> the action's fields, written by hand beside the stage
    effect: Callable  # (lead, fixture) -> whether the lead shows the action's effect


ACTION_KINDS = (
    ActionKind(
        "assign_user", "assign a user",
        lambda f: {"kind": "assign_user", "user_id": f.user_id},
        lambda f: {"user_id": f.user_id},
        lambda lead, f: lead.user_id.id == f.user_id,
    ),
    ActionKind(
        "assign_team", "assign a team",
        lambda f: {"kind": "assign_team", "team_id": f.other_team_id},
        lambda f: {"team_id": f.other_team_id},
        lambda lead, f: lead.team_id.id == f.other_team_id,
    ),
    ActionKind(
        "set_field", "set a field (priority)",
        lambda f: {"kind": "set_field", "set_field_id": f.priority_field_id, "set_selection_id": f.priority_choice_id},
        lambda f: {"priority": PRIORITY},
        lambda lead, f: lead.priority == PRIORITY,
    ),
    ActionKind(
        "add_tags", "add tags",
        lambda f: {"kind": "add_tags", "tag_ids": [Command.set([f.tag_id])]},
        lambda f: {"tag_ids": [Command.link(f.tag_id)]},
        lambda lead, f: f.tag_id in lead.tag_ids.ids,
    ),
    ActionKind(
        "set_stage", "move to a stage",
        lambda f: {"kind": "set_stage", "stage_id": f.stage_final_id},
        lambda f: {"stage_id": f.stage_final_id},
        lambda lead, f: lead.stage_id.id == f.stage_final_id,
    ),
)
ASSIGN_USER, SET_FIELD = ACTION_KINDS[0], ACTION_KINDS[2]
# The references write the owner as the action does by default: without Odoo's "assigned to you" e-mail
REFERENCE_CONTEXT = {"mail_auto_subscribe_no_notify": True}


@dataclass
class Setting:
    """What one measurement switches on and writes, and the effect it must find."""

    ours: tuple = ()
    theirs: tuple = ()
    vals: dict | None = None
    context: dict | None = None
    kind: ActionKind | None = None  # whose effect every measured write must show


def _timed(cr, func, *args):
    """``(ms, queries)`` of ``func(*args)`` on ``cr``. The garbage is collected before, not
    during, the call, as ``timeit`` does: a full collection of Odoo's many objects takes tens
    of milliseconds, at moments that have nothing to do with what is measured."""
    queries = cr.sql_log_count
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        func(*args)
        elapsed = (time.perf_counter() - start) * 1000
    finally:
        gc.enable()
    return elapsed, cr.sql_log_count - queries


def switch(env, ours=(), theirs=()):
    """Switch on only the given workflows and rules (nothing for the plain write)."""
    env["workflow.automation"].with_context(active_test=False).search([]).write({"active": False})
    env["base.automation"].with_context(active_test=False).search([]).write({"active": False})
    env["workflow.automation"].browse(ours).write({"active": True})
    env["base.automation"].browse(theirs).write({"active": True})


def _insert_done_runs(Run, run_vals, records):
    """The run rows of a folded write: prepared from what the trigger index keeps, then inserted."""
    Run._insert(Run._prepare_vals_list_of(run_vals, records, Run.env.user, "done"))


class Bench:
    def __init__(self, registry, leads, repeat):
        self.registry = registry
        self.lead_count = leads
        self.repeat = repeat

    # ------------------------------------------------------------------
    # Data (committed once)
    # ------------------------------------------------------------------

    def setup(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            switch(env)
            user = env["res.users"].create({"name": "Bench owner", "login": f"bench_owner_{time.time_ns()}"})
            teams = env["crm.team"].create([{"name": f"Bench pipeline {i}"} for i in range(IDLE_WORKFLOWS + 2)])
            team, other_team, idle_teams = teams[0], teams[1], teams[2:]
            team.member_ids = user  # the leads' pipeline
            priority = env["ir.model.fields"]._get("crm.lead", "priority")
            self.fixture = Fixture(
                user_id=user.id,
                other_team_id=other_team.id,
                tag_id=env["crm.tag"].create({"name": f"Bench {time.time_ns()}"}).id,
                stage_to_id=env.ref("crm.stage_lead2").id,
                stage_final_id=env.ref("crm.stage_lead3").id,
                priority_field_id=priority.id,
                priority_choice_id=priority.selection_ids.filtered(lambda choice: choice.value == PRIORITY).id,
            )
            leads = env["crm.lead"].create([
                {"name": f"Bench {i}", "type": "opportunity", "team_id": team.id,
                 "stage_id": env.ref("crm.stage_lead1").id, "user_id": False}
                for i in range(self.lead_count + SINGLE_WRITES)
            ])
            self.batch_ids = leads[: self.lead_count].ids
            self.single_ids = leads[self.lead_count:].ids
            self.matching = {
                kind.code: self._create_workflows(env, team, kind.action(self.fixture)) for kind in ACTION_KINDS
            }
            self.idle = self._create_workflows(env, idle_teams, ASSIGN_USER.action(self.fixture))
            self.idle_rules = self._create_rules(env, idle_teams[:IDLE_RULES])
            self.matching_rule = self._create_rules(env, team)
        self._vacuum(analyze=True)

    def _create_workflows(self, env, teams, action_vals):
        """One workflow per team, scoped to it, doing the action when a lead reaches the stage."""
        workflows = env["workflow.automation"].create([
            {
                "name": f"Bench {team.name}",
                "target": "crm.lead",
                "team_ids": [Command.set(team.ids)],
                "trigger_ids": [Command.create({
                    "kind": "stage_reached",
                    "stage_id": self.fixture.stage_to_id,
                    "action_ids": [Command.create(action_vals)],
                })],
            }
            for team in teams
        ])
        return tuple(workflows.ids)

    def _create_rules(self, env, teams):
        """Odoo's Automation Rules that do what the "assign a user" workflows do."""
        model = env["ir.model"]._get("crm.lead")
        rules = env["base.automation"].create([
            {
                "name": f"Bench {team.name}",
                "model_id": model.id,
                "trigger": "on_stage_set",
                "trg_field_ref": self.fixture.stage_to_id,
                "active": False,
                "action_server_ids": [Command.create({
                    "name": "Assign owner",
                    "model_id": model.id,
                    "state": "object_write",
                    "update_path": "user_id",
                    "evaluation_type": "value",
                    "value": str(self.fixture.user_id),
                })],
            }
            for team in teams
        ])
        for rule, team in zip(rules, teams, strict=True):
            rule.filter_domain = repr([("stage_id", "=", self.fixture.stage_to_id), ("team_id", "=", team.id)])
        return tuple(rules.ids)

    # ------------------------------------------------------------------
    # Settings: what each line switches on and writes
    # ------------------------------------------------------------------

    def reference(self, kind):
        """The kind's change by hand: the stage and the action's fields in the user's one write."""
        return Setting(vals=kind.reference(self.fixture), context=REFERENCE_CONTEXT, kind=kind)

    def workflow(self, kind):
        return Setting(ours=self.matching[kind.code], kind=kind)

    # ------------------------------------------------------------------
    # Measurements
    # ------------------------------------------------------------------

    def measure(self, *settings):
        """Return, per setting, ``{shape: (ms, queries)}`` per write, batch and single, best of
        the repeats (of ``SAMPLES`` writes each). The settings are measured side by side, in
        turns, each after a warming run: a machine that slows down or speeds up meanwhile
        moves them alike."""
        results = [{shape: [] for shape in SHAPES} for _setting in settings]
        for _attempt in range(self.repeat):
            for setting, result in zip(settings, results, strict=True):
                self._prepare(setting)
                for shape in SHAPES:
                    self._run(setting, shape)  # warms the caches that the switch cleared
                    result[shape] += [self._run(setting, shape) for _sample in range(SAMPLES[shape])]
        best = [{shape: min(values) for shape, values in result.items()} for result in results]
        return best if len(settings) > 1 else best[0]

    def _prepare(self, setting):
        with self.registry.cursor() as cr:
            switch(api.Environment(cr, SUPERUSER_ID, {}), setting.ours, setting.theirs)
        self.registry.clear_cache()
        self._vacuum()

    def _vacuum(self, analyze=False):
        """Clear what the rolled-back writes left behind (dead rows, and their index entries),
        so that every measurement starts from the same tables, and no autovacuum of them runs
        meanwhile on the other core; the checkpoint that the rolled-back writes call for is made
        here too. The statistics are gathered once (``analyze``), after the
        set-up: sampled anew before each setting, they could give one setting's queries other
        plans than the next one's."""
        _db, info = odoo.sql_db.connection_info_for(self.registry.db_name)
        with closing(psycopg2.connect(**info)) as connection:
            connection.autocommit = True  # VACUUM runs outside a transaction
            with connection.cursor() as cr:
                cr.execute(f"VACUUM {'ANALYZE ' if analyze else ''}{', '.join(VACUUMED_TABLES)}")
                cr.execute("CHECKPOINT")  # written now, not by the checkpointer during a measurement

    def _run(self, setting, shape, profile=None):
        """Time one write of ``shape``, in a transaction rolled back afterwards."""
        vals = {"stage_id": self.fixture.stage_to_id, **(setting.vals or {})}
        ids, write = (self.batch_ids, self._write_batch) if shape == "batch" else (self.single_ids, self._write_singles)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, setting.context or {})
            leads = env["crm.lead"].browse(ids)
            call = (profile.runcall, write) if profile else (write,)
            elapsed, queries = _timed(cr, *call, leads, vals)
            self._check_effect(setting.kind, leads)
            cr.rollback()
        per_write = 1 if shape == "batch" else len(ids)
        return elapsed / per_write, queries / per_write

    def _check_effect(self, kind, leads):
        """A workflow or rule that did not act must not pass for a fast one."""
        if kind and not all(kind.effect(lead, self.fixture) for lead in leads):
            raise SystemExit(f"ERROR: {kind.label}: the change was not made on every lead: measurement invalid")

    def _write_batch(self, leads, vals):
        leads.write(vals)
        leads.env.flush_all()

    def _write_singles(self, leads, vals):
        for lead in leads:
            lead.env.invalidate_all()  # a kanban drag is a request of its own, with a cold record cache
            lead.write(vals)
            lead.env.flush_all()

    def run_rows(self, kind):
        """``(ms, queries)`` of what a folded batch write of ``kind``'s workflow spends on its
        run rows alone: their values prepared from the trigger index, then one insert (the
        audit trail that the hand-written reference does not keep); best of the repeats."""
        self._vacuum()
        measured = []
        for _attempt in range(self.repeat + 1):
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                Run = env["workflow.automation.run"]
                action = env["workflow.automation"].browse(self.matching[kind.code]).trigger_ids.action_ids
                run_vals, leads = action._run_vals(), env["crm.lead"].browse(self.batch_ids)
                leads.mapped("name")  # fetched by the user's write before (its display name is not)
                measured.append(_timed(cr, _insert_done_runs, Run, run_vals, leads))
                cr.rollback()
        return min(measured[1:])  # the first one warms the caches

    def profile(self, setting):
        """cProfile statistics of one batch write of ``setting`` (after a warming run)."""
        self._prepare(setting)
        self._run(setting, "batch")
        profile = cProfile.Profile()
        self._run(setting, "batch", profile)
        return pstats.Stats(profile)


class TimeBench:
    """Issue 4: the queue of delayed actions and the date scan."""

    def __init__(self, registry):
        self.registry = registry
        with registry.cursor() as cr:
            switch(api.Environment(cr, SUPERUSER_ID, {}))  # what the write lines left on is not measured here

    def queue(self, count, kind):
        """Runs per second: ``count`` due runs drained by the cron, and the same action in a loop."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            leads = env["crm.lead"].create([{"name": f"Queue {i}", "type": "opportunity"} for i in range(count)])
            tag = env["crm.tag"].create({"name": f"Queue tag {kind} {time.time_ns()}"})
            action_vals = {"kind": "note", "note_body": "Queued {{ object.name }}"} if kind == "note" else {
                "kind": "add_tags", "tag_ids": [Command.set(tag.ids)]}
            workflow = env["workflow.automation"].create({
                "name": f"Queue {kind}", "target": "crm.lead",
                "trigger_ids": [Command.create({"kind": "create", "action_ids": [Command.create(
                    {**action_vals, "delay": 1})]})],
            })
            workflow.active = True
            action = workflow.trigger_ids.action_ids
            Run = env["workflow.automation.run"]
            past = fields.Datetime.now() - timedelta(minutes=1)
            Run.create(Run._prepare_vals_list(action, leads, env.user, "scheduled", date_due=past))
            lead_ids, workflow_id = leads.ids, workflow.id
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            start = time.perf_counter()
            env["workflow.automation.run"]._cron_execute_due_runs()
            queued = count / (time.perf_counter() - start)
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            start = time.perf_counter()
            for lead in env["crm.lead"].browse(lead_ids):
                if kind == "note":
                    lead.message_post(body=f"Direct {lead.name}", subtype_xmlid="mail.mt_note")
                else:
                    lead.write({"tag_ids": [Command.link(tag.id)]})
            env.flush_all()
            direct = count / (time.perf_counter() - start)
            cr.rollback()
            env["workflow.automation"].browse(workflow_id).active = False
        return queued, direct

    def date_scan(self, total, due):
        """Seconds and queries of one scan over ``total`` opportunities of which ``due`` are due."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            team = env["crm.team"].create({"name": f"Scan pipeline {total}"})
            today = fields.Date.today()
            # set-up only: plain rows, most of them due in ten years, ``due`` of them today
            cr.execute(
                """INSERT INTO crm_lead (name, type, active, team_id, date_deadline, create_date, write_date)
                   SELECT 'Scan ' || n, 'opportunity', TRUE, %s, CASE WHEN n <= %s THEN %s ELSE %s END,
                          now() at time zone 'utc', now() at time zone 'utc'
                   FROM generate_series(1, %s) n""",
                [team.id, due, today, today + timedelta(days=3650), total],
            )
            workflow = env["workflow.automation"].create({
                "name": f"Scan {total}", "target": "crm.lead", "team_ids": [Command.set(team.ids)],
                "trigger_ids": [Command.create({
                    "kind": "date", "date_field_id": env["ir.model.fields"]._get("crm.lead", "date_deadline").id,
                    "date_offset": 0, "date_hour": 0,
                    "action_ids": [Command.create({"kind": "add_tags", "tag_ids": [Command.set(
                        env["crm.tag"].create({"name": f"Due {total}"}).ids)]})],
                })],
            })
            workflow.trigger_ids.date_scanned_until = fields.Datetime.now() - timedelta(days=1)
            workflow.active = True
            trigger = workflow.trigger_ids
            env.flush_all()
            cr.execute("ANALYZE crm_lead")
            queries = cr.sql_log_count
            start = time.perf_counter()
            trigger._scan(fields.Datetime.now())
            env.flush_all()
            elapsed = time.perf_counter() - start
            fired = env["workflow.automation.run"].search_count([("workflow_id", "=", workflow.id)])
            result = elapsed, cr.sql_log_count - queries, fired
            cr.rollback()
        return result


class Report:
    """Prints the lines and counts the targets missed (a bench measures: it never fails)."""

    def __init__(self):
        self.checked = 0
        self.missed = []

    def line(self, label, measured, plain, reference=None, target=None, max_extra_queries=None):
        """A line with its ratio to ``plain`` and, given, to ``reference``, which ``target`` is then against."""
        ms, queries = measured
        text = f"{label:<44} {ms:9.1f} ms {queries:7.1f} queries {ms / plain[0]:6.2f}x plain"
        basis, basis_name = (reference, "reference") if reference else (plain, "plain")
        if reference:
            text += f" {ms / reference[0]:5.2f}x reference ({queries - reference[1]:+.1f} queries)"
        if target is None:
            print(text)
            return
        met = ms / basis[0] <= target
        goal = f"at most {target:.2f}x {basis_name}"
        if max_extra_queries is not None:
            met = met and queries - plain[1] <= max_extra_queries
            text += f" ({queries - plain[1]:+.1f} queries)"
            goal += f" and +{max_extra_queries} queries"
        self.check(f"{text}  target {goal}", met)

    def check(self, text, met):
        self.checked += 1
        if not met:
            self.missed.append(text.split("  ")[0])
        print(f"{text}: {'target met' if met else 'target missed'}")

    def summary(self):
        print(f"summary: {len(self.missed)} of {self.checked} targets missed")
        for label in self.missed:
            print(f"  missed: {label}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5,
                        help="rounds of measured writes per line (best kept): 3 of each shape a round")
    parser.add_argument("--repeat-base-automation", type=int, default=1,
                        help="measured runs per base_automation line, which are slow")
    parser.add_argument("--base-automation-match", action="store_true",
                        help="also the matching base_automation rule (about 5 minutes more)")
    parser.add_argument("--queue-runs", type=int, default=10000)
    parser.add_argument("--only-time", action="store_true", help="only the queue and date-scan lines (issue 4)")
    parser.add_argument("--profile", nargs="*", metavar="KIND", choices=[kind.code for kind in ACTION_KINDS],
                        help="only profile one matching batch write of these action kinds (default: all)")
    args = parser.parse_args()
    odoo.tools.config.parse_config(
        ["-d", args.database, f"--addons-path={args.addons_path}", "--log-level=warn"]
    )
    registry = Registry(args.database)
    if args.profile is not None:
        run_profiles(registry, args)
        return
    report = Report()
    if not args.only_time:
        run_write_bench(registry, args, report)
    run_time_bench(registry, args, report)
    report.summary()


def run_write_bench(registry, args, report):
    bench = Bench(registry, args.leads, args.repeat)
    bench.setup()
    print(f"{args.leads} opportunities moved in one write (batch); {SINGLE_WRITES} single-record writes "
          f"(single, per write); best of {args.repeat} rounds of {SAMPLES['batch']} batch writes and "
          f"{SAMPLES['single']} times the singles")
    plain, idle = bench.measure(Setting(), Setting(ours=bench.idle))
    for shape, measured in plain.items():
        report.line(f"plain write, {shape}", measured, measured)
    references = {}
    for kind in ACTION_KINDS:
        reference, workflow = bench.measure(bench.reference(kind), bench.workflow(kind))
        references[kind.code] = reference
        for shape in SHAPES:
            report.line(f"reference: {kind.label}, {shape}", reference[shape], plain[shape])
            report.line(f"workflow: {kind.label}, {shape}", workflow[shape], plain[shape], reference[shape],
                        MATCH_TARGET)
    report.line(f"run rows of: {SET_FIELD.label}, batch", bench.run_rows(SET_FIELD), plain["batch"],
                references[SET_FIELD.code]["batch"])
    for shape in SHAPES:
        report.line(f"{IDLE_WORKFLOWS} idle workflows, {shape}", idle[shape], plain[shape],
                    target=IDLE_TARGET, max_extra_queries=IDLE_MAX_EXTRA_QUERIES)
    bench.repeat = args.repeat_base_automation
    idle_rules = bench.measure(Setting(theirs=bench.idle_rules))
    for shape in SHAPES:
        report.line(f"base_automation: {IDLE_RULES} idle rules, {shape}", idle_rules[shape], plain[shape])
    if args.base_automation_match:
        matching = bench.measure(Setting(theirs=bench.idle_rules + bench.matching_rule, kind=ASSIGN_USER))
        for shape in SHAPES:
            report.line(f"base_automation: {IDLE_RULES} idle + {ASSIGN_USER.label}, {shape}", matching[shape],
                        plain[shape], references[ASSIGN_USER.code][shape])


def run_time_bench(registry, args, report):
    time_bench = TimeBench(registry)
    for kind, target in (("note", None), ("tag", 1000)):
        queued, direct = time_bench.queue(args.queue_runs, kind)
        line = (f"queue, {args.queue_runs} due runs, {kind:<4}: {queued:8.0f} runs/s by the cron, "
                f"{direct:8.0f}/s in a direct loop, {queued / direct:6.0%} of it")
        goal = "80% of the loop" + (f" and {target} runs/s" if target else "")
        report.check(f"{line}  target {goal}", queued >= 0.8 * direct and (target is None or queued >= target))
    for total in (10000, 100000):
        elapsed, queries, fired = time_bench.date_scan(total, 100)
        report.check(f"date scan, {total:>6} opportunities, 100 due: {elapsed * 1000:8.1f} ms {queries:4d} queries, "
                     f"{fired} fired  target under 2 s", elapsed < 2 and fired == 100)


# ----------------------------------------------------------------------
# Profile of a matching write: where the engine's time goes
# ----------------------------------------------------------------------

def in_addon(func):
    path = Path(func[0])  # a built-in or generated function has a name such as "~" or "<decorator-gen-0>"
    return path.is_absolute() and path.resolve().is_relative_to(ADDON_DIR) and not path.resolve().is_relative_to(
        BENCH_DIR
    )


def cumulative(stats, name, caller=None):
    """Seconds spent in the addon's functions ``name`` or, with ``caller``, in any ``name``
    called by a function ``caller`` (of the addon or of this bench)."""
    seconds = 0.0
    for func, (_calls, _primitive, _own, total, callers) in stats.stats.items():
        if func[2] != name:
            continue
        if caller is None:
            seconds += total if in_addon(func) else 0.0
        else:
            seconds += sum(row[3] for by, row in callers.items() if by[2] == caller)
    return seconds


def run_profiles(registry, args):
    bench = Bench(registry, args.leads, args.repeat)
    bench.setup()
    for kind in ACTION_KINDS:
        if kind.code in (args.profile or [kind.code]):
            reference = bench.profile(bench.reference(kind))
            print_profile(kind, args.leads, reference, bench.profile(bench.workflow(kind)))


def print_profile(kind, leads, reference, stats):
    """The addon's costliest functions in the workflow's write, and its parts beside the reference's."""
    total = stats.total_tt
    print(f"profile (cProfile) of one batch write of {leads} leads, {kind.label}: the workflow "
          f"{total * 1000:.0f} ms, the reference {reference.total_tt * 1000:.0f} ms; the final flush: "
          f"{cumulative(stats, *FINAL_FLUSH) * 1000:.0f} ms, {cumulative(reference, *FINAL_FLUSH) * 1000:.0f} ms")
    print("  top 10 functions of the addon by cumulative time:")
    rows = sorted(
        ((row[3], row[1], func) for func, row in stats.stats.items() if in_addon(func)), reverse=True
    )[:10]
    for seconds, calls, (path, line, name) in rows:
        print(f"    {seconds * 1000:8.1f} ms {seconds / total:6.1%} {calls:6d} calls  "
              f"{Path(path).name}:{line} {name}")
    print("  shares of the profiled write:")
    for label, names in ENGINE_PARTS:
        seconds = sum(cumulative(stats, name) for name in names)
        print(f"    {label:<52} {seconds * 1000:8.1f} ms {seconds / total:6.1%}")


if __name__ == "__main__":
    main()
