"""Benchmark: this addon's workflows against Odoo's Automation Rules (base_automation).

Run by ``make bench`` on a fresh database with crm, base_automation and this addon.
Every measurement runs in its own transaction, rolled back afterwards, so that each
starts from the same data; the ORM and registry caches are warmed by one discarded run.
Each line gives milliseconds, SQL queries and the ratio to a plain write measured in
the same run with no automation switched on.
"""

import argparse
import time
from datetime import timedelta

import odoo
from odoo import SUPERUSER_ID, Command, api, fields
from odoo.modules.registry import Registry

SCOPES = 50
SINGLE_WRITES = 200
# Targets of issue #3, as ratios to the plain write: (batch, single)
TARGETS = {"no match": (1.10, 1.10), "one match": (3.0, 1.5)}
MAX_EXTRA_QUERIES_PER_SINGLE_WRITE = {"no match": 2}


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
            env["workflow.automation"].with_context(active_test=False).search([]).write({"active": False})
            env["base.automation"].with_context(active_test=False).search([]).write({"active": False})
            self.stage_from = env.ref("crm.stage_lead1").id
            self.stage_to = env.ref("crm.stage_lead2").id
            self.user = env["res.users"].create({"name": "Bench owner", "login": f"bench_owner_{time.time_ns()}"}).id
            teams = env["crm.team"].create([{"name": f"Bench pipeline {i}"} for i in range(SCOPES + 1)])
            self.team = teams[-1]  # the leads' pipeline, which the new owner belongs to
            self.team.member_ids = env["res.users"].browse(self.user)
            other_teams = teams[:-1]
            leads = env["crm.lead"].create([
                {"name": f"Bench {i}", "type": "opportunity", "team_id": self.team.id,
                 "stage_id": self.stage_from, "user_id": False}
                for i in range(self.lead_count + SINGLE_WRITES)
            ])
            self.batch_ids = leads[: self.lead_count].ids
            self.single_ids = leads[self.lead_count:].ids
            self.ours = {
                "no match": self._create_workflows(env, other_teams),
                "one match": self._create_workflows(env, self.team),
            }
            self.theirs = {
                "no match": self._create_rules(env, other_teams),
                "one match": self._create_rules(env, self.team),
            }

    def _create_workflows(self, env, teams):
        workflows = env["workflow.automation"].create([
            {
                "name": f"Bench {team.name}",
                "target": "crm.lead",
                "team_ids": [Command.set(team.ids)],
                "trigger_ids": [Command.create({
                    "kind": "stage_reached",
                    "stage_id": self.stage_to,
                    "action_ids": [Command.create({"kind": "assign_user", "user_id": self.user})],
                })],
            }
            for team in teams
        ])
        return workflows.ids

    def _create_rules(self, env, teams):
        model = env["ir.model"]._get("crm.lead")
        rules = env["base.automation"].create([
            {
                "name": f"Bench {team.name}",
                "model_id": model.id,
                "trigger": "on_stage_set",
                "trg_field_ref": self.stage_to,
                "active": False,
                "action_server_ids": [Command.create({
                    "name": "Assign owner",
                    "model_id": model.id,
                    "state": "object_write",
                    "update_path": "user_id",
                    "evaluation_type": "value",
                    "value": str(self.user),
                })],
            }
            for team in teams
        ])
        for rule, team in zip(rules, teams, strict=True):
            rule.filter_domain = repr([("stage_id", "=", self.stage_to), ("team_id", "=", team.id)])
        return rules.ids

    # ------------------------------------------------------------------
    # Measurements
    # ------------------------------------------------------------------

    def switch(self, env, ours=(), theirs=()):
        """Switch on only the given workflows and rules (nothing for the plain write)."""
        env["workflow.automation"].with_context(active_test=False).search([]).write({"active": False})
        env["base.automation"].with_context(active_test=False).search([]).write({"active": False})
        env["workflow.automation"].browse(ours).write({"active": True})
        env["base.automation"].browse(theirs).write({"active": True})

    def measure(self, ours=(), theirs=(), vals=None, context=None, assigns=False):
        """Return {'batch': (ms, queries), 'single': (ms, queries)} per write, best of the repeats.

        ``vals`` adds values to the stage written, ``context`` is the writer's (for the
        hand-written reference of scenario 2); with ``assigns``, every run checks that the
        leads did get the new owner, so that a rule that did not act is not timed."""
        with self.registry.cursor() as cr:
            self.switch(api.Environment(cr, SUPERUSER_ID, {}), ours, theirs)
        self.registry.clear_cache()
        vals = {"stage_id": self.stage_to, **(vals or {})}
        results = {"batch": [], "single": []}
        for attempt in range(self.repeat + 1):  # the first run warms the caches
            batch = self._run(self._write_batch, vals, context, assigns and self.batch_ids)
            single = self._run(self._write_singles, vals, context, assigns and self.single_ids)
            if attempt:
                results["batch"].append(batch)
                results["single"].append((single[0] / SINGLE_WRITES, single[1] / SINGLE_WRITES))
        return {kind: min(values, key=lambda v: v[0]) for kind, values in results.items()}

    def _run(self, write, vals, context, assigned_ids):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, context or {})
            queries = cr.sql_log_count
            start = time.perf_counter()
            write(env, vals)
            elapsed = (time.perf_counter() - start) * 1000
            queries = cr.sql_log_count - queries
            if assigned_ids and env["crm.lead"].browse(assigned_ids).user_id.ids != [self.user]:
                raise SystemExit("ERROR: the matching workflow or rule did not assign the owner: measurement invalid")
            cr.rollback()
        return elapsed, queries

    def _write_batch(self, env, vals):
        env["crm.lead"].browse(self.batch_ids).write(vals)
        env.flush_all()

    def _write_singles(self, env, vals):
        for lead in env["crm.lead"].browse(self.single_ids):
            env.invalidate_all()  # a kanban drag is a request of its own, with a cold record cache
            lead.write(vals)
            env.flush_all()


class TimeBench:
    """Issue 4: the queue of delayed actions and the date scan."""

    def __init__(self, registry):
        self.registry = registry

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
            Run.create([Run._prepare_scheduled_vals(action, lead, env.user, past, False) for lead in leads])
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


def report_line(label, measured, plain, target=None, max_extra_queries=None):
    ms, queries = measured
    ratio = ms / plain[0]
    line = f"{label:<52} {ms:10.1f} ms {queries:9.1f} queries {ratio:8.2f}x plain"
    if target is not None:
        met = ratio <= target
        if max_extra_queries is not None:
            met = met and queries - plain[1] <= max_extra_queries
            line += f" (+{queries - plain[1]:.1f} queries)"
        line += f"  target {target:.2f}x: {'target met' if met else 'target missed'}"
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--addons-path", required=True)
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="measured runs per line (best kept)")
    parser.add_argument("--repeat-base-automation", type=int, default=1,
                        help="measured runs per base_automation line, which are slow")
    parser.add_argument("--queue-runs", type=int, default=10000)
    parser.add_argument("--only-time", action="store_true", help="only the queue and date-scan lines (issue 4)")
    args = parser.parse_args()
    odoo.tools.config.parse_config(
        ["-d", args.database, f"--addons-path={args.addons_path}", "--log-level=warn"]
    )
    registry = Registry(args.database)
    if not args.only_time:
        run_write_bench(registry, args)
    run_time_bench(registry, args)


def run_time_bench(registry, args):
    time_bench = TimeBench(registry)
    for kind, target in (("note", None), ("tag", 1000)):
        queued, direct = time_bench.queue(args.queue_runs, kind)
        line = (f"queue, {args.queue_runs} due runs, {kind:<4}: {queued:8.0f} runs/s by the cron, "
                f"{direct:8.0f}/s in a direct loop, {queued / direct:6.0%} of it")
        met = queued >= 0.8 * direct and (target is None or queued >= target)
        goal = "80% of the loop" + (f" and {target} runs/s" if target else "")
        print(f"{line}  target {goal}: {'target met' if met else 'target missed'}")
    for total in (10000, 100000):
        elapsed, queries, fired = time_bench.date_scan(total, 100)
        met = elapsed < 2 and fired == 100
        print(f"date scan, {total:>6} opportunities, 100 due: {elapsed * 1000:8.1f} ms {queries:4d} queries, "
              f"{fired} fired  target under 2 s: {'target met' if met else 'target missed'}")


def run_write_bench(registry, args):
    bench = Bench(registry, args.leads, args.repeat)
    bench.setup()

    plain = bench.measure()
    print(f"{args.leads} opportunities moved in one write (batch); {SINGLE_WRITES} single-record writes "
          f"(single, per write); {SCOPES} scopes; best of {args.repeat} runs")
    print(report_line("plain write, batch", plain["batch"], plain["batch"]))
    print(report_line("plain write, single", plain["single"], plain["single"]))
    # What the matching workflow does, written by hand: the stage and the salesperson at once,
    # without Odoo's per-record "assigned to you" notification (as the action does by default).
    by_hand = bench.measure(
        vals={"user_id": bench.user}, context={"mail_auto_subscribe_no_notify": True}, assigns=True
    )
    print(report_line("reference: stage + salesperson by hand, batch", by_hand["batch"], plain["batch"]))
    print(report_line("reference: stage + salesperson by hand, single", by_hand["single"], plain["single"]))
    for scenario, number in (("no match", 1), ("one match", 2)):
        ours = bench.measure(
            ours=bench.ours["no match"] + (bench.ours[scenario] if number == 2 else []), assigns=number == 2
        )
        batch_target, single_target = TARGETS[scenario]
        extra = MAX_EXTRA_QUERIES_PER_SINGLE_WRITE.get(scenario)
        print(report_line(f"{number}. {scenario}: crm_workflow_automation, batch", ours["batch"],
                          plain["batch"], batch_target))
        print(report_line(f"{number}. {scenario}: crm_workflow_automation, single", ours["single"],
                          plain["single"], single_target, extra))
    bench.repeat = args.repeat_base_automation
    for scenario, number in (("no match", 1), ("one match", 2)):
        theirs = bench.measure(
            theirs=bench.theirs["no match"] + (bench.theirs[scenario] if number == 2 else []), assigns=number == 2
        )
        print(report_line(f"{number}. {scenario}: base_automation, batch", theirs["batch"], plain["batch"]))
        print(report_line(f"{number}. {scenario}: base_automation, single", theirs["single"], plain["single"]))


if __name__ == "__main__":
    main()
