import re

from odoo.tests import tagged

from .common import WorkflowAutomationCase, messages_containing


@tagged("post_install", "-at_install", "is_query_count")
class TestEngine(WorkflowAutomationCase):
    def test_batch_of_500_mixed_leads_fires_only_on_matching_ones(self):
        # 5 groups of 100: only pipeline A's leads that change stage fire
        in_scope = self.create_leads(100, team=self.team_a, stage=self.stage_new) | self.create_leads(
            100, team=self.team_a, stage=self.stage_qualified
        )
        leads = (
            in_scope
            | self.create_leads(100, team=self.team_a, stage=self.stage_proposition)
            | self.create_leads(100, team=self.team_b, stage=self.stage_new)
            | self.create_leads(100, team=self.team_b, stage=self.stage_qualified)
        )
        workflow = self.create_stage_workflow(
            self.stage_proposition, [{"kind": "assign_user", "user_id": self.owner.id}]
        )
        self.env.invalidate_all()
        with self.trap_runs() as trap, self.capture_queries() as queries:
            leads.write({"stage_id": self.stage_proposition.id})

        self.assertEqual(in_scope.user_id, self.owner)
        self.assertNotIn(self.owner, (leads - in_scope).user_id)
        trap.assert_runs(workflow, in_scope, state="done", count=200)
        # "assign user" is one write for the whole batch, not one per lead: Odoo flushes
        # it in statements of 100 rows, so 200 leads take 2 UPDATE statements, not 200.
        user_updates = [q for q in queries if re.search(r'UPDATE\s+"crm_lead"\s+SET.*"user_id"', q, re.S)]
        self.assertEqual(len(user_updates), 2, user_updates)

    def test_single_drag_records_run_with_triggering_user(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "assign_user", "user_id": self.owner.id}]
        )
        with self.trap_runs() as trap:
            lead = self.qualify(user=self.salesman)
        self.assertEqual(lead.user_id, self.owner)
        run = trap.assert_runs(workflow, lead, state="done")
        self.assertEqual(run.user_id, self.salesman)
        self.assertEqual(run.record_ref, lead)

    def test_runs_keep_the_names_odoo_shows(self):
        """The runs' record names, read in bulk, are the records' display names."""
        leads = self.create_leads(2)
        leads[1].name = "Café « Müller » & Söhne"
        for records in (leads, self.create_project("Site web")):
            self.assertEqual(records._workflow_display_names(), records.mapped("display_name"))

    def test_write_matching_nothing_adds_no_query(self):
        def create_workflows():
            # switched-on workflows watching stages, none in this lead's pipeline
            for stage in (self.stage_qualified, self.stage_proposition, self.stage_won):
                self.create_stage_workflow(stage, [{"kind": "add_tags", "tag_ids": [self.tag.id]}],
                                           teams=self.team_b)

        leads = self.create_leads(4)
        with self.trap_runs() as trap:
            self.assert_no_extra_query(self.qualify_afresh, create_workflows, leads)
        trap.assert_none()

    def test_write_with_switched_off_workflows_and_their_test_records_adds_no_query(self):
        test_leads = []

        def create_workflows():
            # switched-off workflows watching this very stage and pipeline, each with a test record
            for name in ("Draft 1", "Draft 2"):
                draft = self.create_stage_workflow(
                    self.stage_qualified, [{"kind": "add_tags", "tag_ids": [self.tag.id]}], name=name, active=False
                )
                test_leads.append(self.create_test_record(draft))

        self.assert_no_extra_query(self.qualify_afresh, create_workflows, self.create_leads(4))
        # no snapshot nor per-record work for an ordinary lead: the index lists the test records
        vals = {"stage_id": self.stage_qualified.id}
        for lead, events in ((self.create_leads(), []), (test_leads[0], ["stage_reached"])):
            self.assertEqual(list(lead._workflow_events_for(vals)), events)

    def test_write_of_unwatched_field_adds_no_query(self):
        leads = self.create_leads(4)
        with self.trap_runs() as trap:
            self.assert_no_extra_query(
                lambda lead: lead.write({"description": f"Lead {lead.id}"}),
                lambda: self.create_stage_workflow(
                    self.stage_qualified, [{"kind": "assign_user", "user_id": self.owner.id}]
                ),
                leads,
            )
        trap.assert_none()

    def test_batch_matching_a_tag_action_runs_the_same_queries_for_10_and_500_leads(self):
        self.assert_batch_independent_queries([{"kind": "add_tags", "tag_ids": [self.tag.id]}])

    def test_batch_matching_an_assign_action_runs_the_same_queries_for_10_and_500_leads(self):
        self.assert_batch_independent_queries([{"kind": "assign_user", "user_id": self.owner.id}])

    def test_failing_action_keeps_the_stage_change_and_logs_a_failed_run(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified,
            [
                {"kind": "assign_team", "team_id": self.create_foreign_team().id},  # incompatible company: fails
                {"kind": "note", "note_body": "after the failure"},
            ],
        )
        workflow.message_subscribe(partner_ids=self.owner.partner_id.ids)
        assign, note = workflow.trigger_ids.action_ids
        with self.trap_runs() as trap:
            lead = self.qualify(self.create_leads(company_id=self.company.id), self.salesman)

        self.assertEqual(lead.stage_id, self.stage_qualified, "the user's change is kept")
        self.assertEqual(lead.team_id, self.team_a)
        failed = trap.assert_runs(assign, lead, state="failed")
        self.assertIn("compan", failed.message.lower())
        skipped = trap.assert_runs(note, lead, state="skipped")
        self.assertEqual(skipped.message, "An earlier action of this trigger failed.")
        self.assertFalse(messages_containing(lead, "after the failure"))
        notification = messages_containing(workflow, "failed")
        self.assertEqual(len(notification), 1)
        self.assertIn(self.owner.partner_id, notification.notified_partner_ids)

    def test_failed_action_leaves_tracking_to_the_commit(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "assign_team", "team_id": self.create_foreign_team().id}]
        )
        leads = self.create_leads(2)
        self.env.cr.flush()  # the creation's own tracking
        leads.write({"stage_id": self.stage_qualified.id})
        self.assertEqual(len(self.runs(workflow, "failed")), 2)
        self.env.cr.flush()  # what a commit runs first: the tracking hooks
        for lead in leads:
            tracked = lead.message_ids[0].tracking_value_ids.field_id.mapped("name")
            self.assertIn("stage_id", tracked)
            self.assertNotIn("team_id", tracked, "the rolled-back change is not tracked")
            self.assertEqual(lead.team_id, self.team_a)

    def test_batch_failure_is_isolated_to_the_failing_records(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "note", "note_body": "{{ 10 / object.expected_revenue }}"}]
        )
        good = self.create_leads(2, expected_revenue=5)
        bad = self.create_leads(1, expected_revenue=0)  # division by zero when rendering
        (good | bad).write({"stage_id": self.stage_qualified.id})
        self.assertEqual(self.runs(workflow, "done").mapped("res_id"), sorted(good.ids, reverse=True))
        self.assertEqual(self.runs(workflow, "failed").res_id, bad.id)
        self.assertIn("2.0", good[0].message_ids[0].body)

    def test_two_workflows_triggering_each_other_stop(self):
        ping, pong = self.create_loop_workflows()
        with self.trap_runs() as trap:
            lead = self.qualify()
        # each (trigger, record) pair fires once per transaction: Ping's return is cut, and said
        self.assertEqual(sorted(trap.assert_runs(ping, lead, count=2).mapped("state")), ["done", "skipped"])
        trap.assert_runs(pong, lead)
        self.assertEqual(lead.stage_id, self.stage_qualified)

    def test_long_chain_is_cut_at_the_depth_limit(self):
        stages = self.env["crm.stage"].create([{"name": f"Step {i}", "sequence": 100 + i} for i in range(8)])
        workflows = [
            self.create_stage_workflow(stage, [{"kind": "set_stage", "stage_id": next_stage.id}], name=stage.name)
            for stage, next_stage in zip(stages[:-1], stages[1:], strict=True)
        ]
        lead = self.create_leads()
        with self.trap_runs() as trap:
            lead.write({"stage_id": stages[0].id})
        # depth 0..4 run; the sixth link is stopped with a run saying so
        self.assertEqual(lead.stage_id, stages[5])
        for workflow in workflows[:5]:
            trap.assert_runs(workflow, lead, state="done")
        stopped = trap.assert_runs(workflows[5], lead, state="skipped")
        self.assertIn("triggered each other 5 times", stopped.message)
        self.assertFalse(trap.of(workflows[6]))

    def test_creating_a_lead_fires_created_and_stage_reached_once_each(self):
        created = self.create_workflow(
            [{"kind": "create", "actions": [{"kind": "activity", "activity_type_id": self.activity_call.id}]}],
            name="Created",
        )
        reached = self.create_stage_workflow(
            self.stage_new, [{"kind": "activity", "activity_type_id": self.activity_call.id}], name="Reached"
        )
        lead = self.env["crm.lead"].with_user(self.salesman).create({
            "name": "Fresh lead", "type": "opportunity", "team_id": self.team_a.id, "partner_id": self.partner.id,
        })
        self.assertEqual(lead.stage_id, self.stage_new, "stage computed by Odoo during create")
        self.assertEqual(len(self.runs(created)), 1)
        self.assertEqual(len(self.runs(reached)), 1)
        self.assertEqual(len(lead.activity_ids), 2)

    def test_five_workflows_on_one_write_fire_five_times(self):
        tag = self.tag
        workflows = [
            self.create_stage_workflow(self.stage_qualified, [{"kind": "add_tags", "tag_ids": [tag.id]}],
                                       name=f"W{i}")
            for i in range(5)
        ]
        with self.trap_runs() as trap:
            lead = self.qualify()
        for workflow in workflows:
            trap.assert_runs(workflow, lead)

    def test_actions_of_a_trigger_run_in_order(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified,
            [
                {"kind": "assign_user", "user_id": self.owner.id},
                {"kind": "note", "note_body": "Owner is {{ object.user_id.name }}"},
            ],
        )
        with self.trap_runs() as trap:
            lead = self.qualify()
        self.assertIn("Owner is Oscar Owner", lead.message_ids[0].body)
        trap.assert_runs(workflow, lead, state="done", count=2)
