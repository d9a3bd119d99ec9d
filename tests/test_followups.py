from datetime import timedelta

from psycopg2 import errors

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import CommittedWorkflowCase, WorkflowAutomationCase, messages_containing

AUTO_COMPLETED = "Completed automatically: the record left the stage."
LEFT_THE_STAGE = "The record left the stage it was in when the follow-up was added."


@tagged("post_install", "-at_install", "is_query_count")
class TestFollowups(WorkflowAutomationCase):
    """Follow-ups: one activity or an activity plan, their "when completed" effect, and
    their completion when the record leaves the stage."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.activity_todo = cls.env.ref("mail.mail_activity_data_todo")
        cls.activity_email = cls.env.ref("mail.mail_activity_data_email")

    def followup(self, **values):
        """A follow-up action: one call, unless ``values`` say otherwise."""
        return {"kind": "activity", "activity_type_id": self.activity_call.id, **values}

    def three_step_plan(self):
        return self.create_plan([
            {"activity_type_id": self.activity_call.id, "summary": "Call", "responsible_type": "on_demand",
             "delay_count": 2, "delay_from": "after_plan_date"},
            {"activity_type_id": self.activity_email.id, "summary": "Send the offer", "responsible_type": "other",
             "responsible_id": self.owner.id, "delay_count": 1, "delay_unit": "weeks",
             "delay_from": "after_plan_date"},
            {"activity_type_id": self.activity_todo.id, "summary": "Check the signature",
             "responsible_type": "on_demand"},
        ])

    def mark_done(self, activities, user=None):
        activities.with_user(user or self.salesman).action_feedback(feedback="Done")

    def effect_runs(self, workflow, state=None):
        return self.runs(workflow, state).filtered("followup_effect")

    # ------------------------------------------------------------------
    # Adding the follow-up: one activity or an activity plan
    # ------------------------------------------------------------------

    def test_activity_remembers_its_action_and_stage(self):
        workflow, lead = self.fire(self.followup())
        self.assertEqual(lead.activity_ids.workflow_action_id, workflow.trigger_ids.action_ids)
        self.assertEqual(lead.activity_ids.workflow_stage_ref, self.stage_qualified.id)
        self.assertFalse(lead.workflow_followup_pending, "only self-completing follow-ups flag the record")

    def test_plan_is_applied_as_odoo_applies_it_for_the_whole_batch(self):
        plan = self.three_step_plan()
        workflow, leads = self.fire(self.followup(followup_mode="plan", activity_plan_id=plan.id),
                                    leads=self.create_leads(2))
        today = fields.Date.context_today(leads.with_user(self.salesman))  # his day, whose move applied the plan
        self.assertEqual(len(self.runs(workflow, "done")), 2)
        for lead in leads:
            activities = lead.activity_ids.sorted("date_deadline")
            self.assertEqual(activities.mapped("summary"), ["Check the signature", "Call", "Send the offer"])
            self.assertEqual(activities.mapped("date_deadline"),
                             [today, today + timedelta(days=2), today + timedelta(weeks=1)])
            self.assertEqual(activities.mapped("user_id"), self.salesman | self.salesman | self.owner,
                             "on demand: the record's owner; otherwise the template's user")
            self.assertEqual(activities.workflow_action_id, workflow.trigger_ids.action_ids)
            started = messages_containing(lead, "has been started")
            self.assertEqual(len(started), 1)
            self.assertIn("Onboarding", started.body)
            self.assertIn("Send the offer, assigned to Oscar Owner", started.body)

    def test_plan_on_demand_activities_go_to_the_chosen_user(self):
        plan = self.three_step_plan()
        _workflow, lead = self.fire(self.followup(
            followup_mode="plan", activity_plan_id=plan.id, activity_user_mode="user", activity_user_id=self.owner.id,
        ))
        self.assertEqual(lead.activity_ids.user_id, self.owner)

    def test_invalid_plans_are_refused_naming_the_field(self):
        partner_plan = self.create_plan([{"activity_type_id": self.activity_call.id}], model="res.partner")
        empty_plan = self.create_plan([])
        other_company = self.env["res.company"].create({"name": "Plan Co"})
        foreign_plan = self.create_plan([{"activity_type_id": self.activity_call.id}])
        foreign_plan.company_id = other_company
        for plan, message in [
            (self.env["mail.activity.plan"], "this action needs a value here"),
            (partner_plan, "the plan is made for another model"),
            (empty_plan, "the plan has no activities"),
            (foreign_plan, "the plan belongs to another company"),
        ]:
            with self.subTest(message=message), self.assertRaisesRegex(
                ValidationError, f"Workflow “Broken”, action “Add a follow-up”, field “Activity plan”: {message}"
            ):
                self.create_workflow([{"kind": "create", "actions": [
                    {"kind": "activity", "followup_mode": "plan", "activity_plan_id": plan.id}
                ]}], name="Broken", active=False)

    def test_invalid_effects_are_refused_naming_the_field(self):
        stage_b = self.env["crm.stage"].create({"name": "B only", "team_id": self.team_b.id})
        with self.assertRaisesRegex(ValidationError, "field “Stage”: this action needs a value here"):
            self.create_stage_workflow(self.stage_qualified, [self.followup(followup_effect="set_stage")])
        with self.assertRaisesRegex(ValidationError, "field “Stage”: the stage “B only” belongs to the pipeline"):
            self.create_stage_workflow(
                self.stage_qualified, [self.followup(followup_effect="set_stage", stage_id=stage_b.id)]
            )
        with self.assertRaisesRegex(ValidationError, "field “When completed”: this effect is not available"):
            self.create_workflow(
                [{"kind": "create", "actions": [self.followup(followup_effect="mark_won")]}],
                target="project.project", active=False,
            )

    # ------------------------------------------------------------------
    # When completed: the effect
    # ------------------------------------------------------------------

    def test_completing_the_followup_runs_its_effect(self):
        workflow, lead = self.fire(self.followup(followup_effect="set_stage", stage_id=self.stage_proposition.id))
        self.mark_done(lead.activity_ids)
        self.assertEqual(lead.stage_id, self.stage_proposition)
        run = self.effect_runs(workflow)
        self.assertEqual(run.state, "done")
        self.assertEqual(run.message, "Follow-up completed: Move to a stage.")
        self.assertEqual(run.user_id, self.salesman, "the user who marked it done")
        self.assertEqual(run.stage_ref, self.stage_qualified.id)

    def test_effect_runs_with_the_engines_rights(self):
        workflow, lead = self.fire(
            self.followup(activity_user_mode="user", activity_user_id=self.salesman.id, followup_effect="mark_won"),
        )
        # A salesperson restricted to her own documents completes her call on someone else's lead.
        lead.user_id = self.owner
        self.assertFalse(lead.with_user(self.salesman).has_access("write"))
        self.mark_done(lead.activity_ids)
        self.assertEqual(lead.stage_id, self.stage_won)
        self.assertEqual(self.effect_runs(workflow).state, "done")

    def test_effect_skipped_when_the_record_left_the_stage(self):
        workflow, lead = self.fire(self.followup(followup_effect="mark_won"))
        lead.write({"stage_id": self.stage_proposition.id})
        self.mark_done(lead.activity_ids)
        self.assertEqual(lead.stage_id, self.stage_proposition, "not won")
        run = self.effect_runs(workflow)
        self.assertEqual(run.state, "skipped")
        self.assertEqual(run.message, LEFT_THE_STAGE)

    def test_effect_skipped_when_the_workflow_is_off(self):
        workflow, lead = self.fire(self.followup(followup_effect="mark_won"))
        workflow.active = False
        self.mark_done(lead.activity_ids)
        self.assertEqual(lead.stage_id, self.stage_qualified)
        self.assertEqual(self.effect_runs(workflow, "skipped").message, "The workflow was switched off.")

    def test_plan_effect_runs_when_its_last_activity_is_done_in_any_order(self):
        plan = self.three_step_plan()
        workflow, leads = self.fire(
            self.followup(followup_mode="plan", activity_plan_id=plan.id, followup_effect="mark_won"),
            leads=self.create_leads(2),
        )
        first, second = leads
        third_steps = (first | second).activity_ids.filtered(lambda a: a.summary == "Check the signature")
        self.mark_done(third_steps)
        self.mark_done(first.activity_ids.filtered(lambda a: a.summary == "Call"))
        self.assertFalse(self.effect_runs(workflow), "activities of the plan are still open")
        self.assertEqual((first | second).stage_id, self.stage_qualified)
        self.mark_done(first.activity_ids)  # the last one
        self.mark_done(second.activity_ids)  # the two others at once
        self.assertEqual((first | second).stage_id, self.stage_won)
        runs = self.effect_runs(workflow, "done")
        self.assertEqual(sorted(runs.mapped("res_id")), sorted(leads.ids), "once per record")

    def test_cancelled_followup_has_no_effect(self):
        workflow, lead = self.fire(self.followup(followup_effect="mark_won"))
        lead.activity_ids.with_user(self.salesman).action_cancel()
        self.assertFalse(lead.activity_ids)
        self.assertFalse(self.effect_runs(workflow), "cancelling is not completing: no effect, no run")
        self.assertEqual(lead.stage_id, self.stage_qualified)

    def test_cancelled_activity_of_a_plan_no_longer_counts_as_open(self):
        plan = self.three_step_plan()
        workflow, lead = self.fire(
            self.followup(followup_mode="plan", activity_plan_id=plan.id, followup_effect="mark_won")
        )
        lead.activity_ids.filtered(lambda a: a.summary == "Call").unlink()
        self.mark_done(lead.activity_ids)
        self.assertEqual(lead.stage_id, self.stage_won)
        self.assertEqual(self.effect_runs(workflow).state, "done")

    def test_failing_effect_keeps_the_mark_done_and_fails_its_run(self):
        stage_a = self.env["crm.stage"].create({"name": "A only", "team_id": self.team_a.id, "sequence": 50})
        workflow, lead = self.fire(self.followup(followup_effect="set_stage", stage_id=stage_a.id))
        lead.team_id = self.team_b  # the shared stage stays: the follow-up is still due
        self.mark_done(lead.activity_ids)
        self.assertFalse(lead.activity_ids, "the user's mark done is kept")
        self.assertTrue(lead.message_ids.filtered(lambda m: m.subtype_id == self.env.ref("mail.mt_activities")))
        self.assertEqual(lead.stage_id, self.stage_qualified)
        run = self.effect_runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertIn("belongs to the pipeline “Pipeline A”, not to “Pipeline B”", run.message)
        # Retrying the failed run runs the effect again, not the follow-up.
        lead.team_id = self.team_a
        run.action_retry()
        self.assertEqual(run.state, "done")
        self.assertEqual(lead.stage_id, stage_a)
        self.assertFalse(lead.activity_ids)

    def test_mark_lost_effect_with_reason(self):
        reason = self.env["crm.lost.reason"].create({"name": "No answer"})
        _workflow, lead = self.fire(self.followup(followup_effect="mark_lost", lost_reason_id=reason.id))
        self.mark_done(lead.activity_ids)
        self.assertFalse(lead.active)
        self.assertEqual(lead.lost_reason_id, reason)

    def test_effect_fires_the_workflows_of_its_change(self):
        workflow, lead = self.fire(self.followup(followup_effect="mark_won"))
        won = self.create_workflow(
            [{"kind": "won", "actions": [{"kind": "note", "note_body": "won by a follow-up"}]}], name="Won"
        )
        self.mark_done(lead.activity_ids)
        self.assertEqual(self.runs(won).state, "done")
        self.assertTrue(messages_containing(lead, "won by a follow-up"))
        self.assertEqual(self.effect_runs(workflow).state, "done")

    def project_followup_workflow(self, **values):
        return self.create_workflow(
            [{"kind": "stage_reached", "project_stage_id": self.stage_doing.id,
              "actions": [self.followup(**values)]}],
            target="project.project",
        )

    def test_completing_a_project_followup_closes_the_project(self):
        workflow = self.project_followup_workflow(followup_effect="close_project")
        closed = self.create_workflow(
            [{"kind": "project_closed", "actions": [{"kind": "note", "note_body": "closed"}]}],
            target="project.project", name="Closed",
        )
        project = self.create_project()
        project.stage_id = self.stage_doing
        self.mark_done(project.activity_ids, user=self.env.user)
        self.assertEqual(project.stage_id, self.stage_done, "the first folded stage")
        self.assertEqual(self.effect_runs(workflow).state, "done")
        self.assertEqual(self.runs(closed).res_id, project.id, "the same meaning as the trigger")

    def test_closing_a_project_without_folded_stage_fails_its_run(self):
        workflow = self.project_followup_workflow(followup_effect="close_project")
        project = self.create_project()
        project.stage_id = self.stage_doing
        self.env["project.project.stage"].search([("fold", "=", True)]).fold = False
        self.mark_done(project.activity_ids, user=self.env.user)
        self.assertEqual(project.stage_id, self.stage_doing)
        run = self.effect_runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertIn("no folded project stage", run.message)

    # ------------------------------------------------------------------
    # Completed automatically when the record leaves the stage
    # ------------------------------------------------------------------

    def test_followup_completes_itself_when_the_record_leaves_the_stage(self):
        plan = self.three_step_plan()
        workflow, lead = self.fire(self.followup(
            followup_mode="plan", activity_plan_id=plan.id, followup_auto_complete=True, followup_effect="mark_won",
        ))
        other = self.env["mail.activity"].create({
            "res_model_id": self.env["ir.model"]._get_id("crm.lead"), "res_id": lead.id,
            "activity_type_id": self.activity_todo.id, "summary": "Not a follow-up",
        })
        self.assertTrue(lead.workflow_followup_pending)
        lead.write({"stage_id": self.stage_proposition.id})
        self.assertEqual(lead.activity_ids, other, "only the follow-up's activities are completed")
        done = messages_containing(lead, AUTO_COMPLETED)
        self.assertEqual(len(done), 3)
        self.assertEqual(lead.stage_id, self.stage_proposition, "no effect")
        self.assertFalse(self.effect_runs(workflow), "no run: auto-completion is not a completion by the user")
        self.assertFalse(lead.workflow_followup_pending)

    def test_self_completing_followup_stays_while_the_record_stays(self):
        _workflow, lead = self.fire(self.followup(followup_auto_complete=True))
        lead.write({"stage_id": self.stage_qualified.id, "description": "same stage"})
        lead.write({"team_id": self.team_b.id})
        self.assertEqual(len(lead.activity_ids), 1)

    def test_followup_of_a_switched_off_workflow_does_not_complete_itself(self):
        workflow, lead = self.fire(self.followup(followup_auto_complete=True))
        workflow.active = False
        self.create_stage_workflow(self.stage_won, [self.followup(followup_auto_complete=True)], name="Still on")
        lead.write({"stage_id": self.stage_proposition.id})
        self.assertEqual(len(lead.activity_ids), 1)
        self.assertTrue(lead.workflow_followup_pending, "its open follow-up still flags the record")

    def test_stage_write_of_records_without_self_completing_followups_adds_no_query(self):
        self.assert_no_extra_query(
            self.qualify_afresh,
            lambda: self.create_stage_workflow(self.stage_proposition, [self.followup(followup_auto_complete=True)]),
            self.create_leads(4),
        )

    def test_switched_off_self_completing_followups_add_no_query(self):
        leads = self.create_leads(4, workflow_followup_pending=True)
        self.assert_no_extra_query(
            self.qualify_afresh,
            lambda: self.create_stage_workflow(
                self.stage_proposition, [self.followup(followup_auto_complete=True)], active=False
            ),
            leads,
        )


@tagged("post_install", "-at_install", "is_query_count")
class TestActivityTriggers(WorkflowAutomationCase):
    """Triggers "activity of type T created" and "activity of type T done"."""

    def activity_note_workflow(self, kind, activity_type=None, condition="[]", **values):
        return self.note_workflow({
            "kind": kind, "activity_type_id": activity_type.id if activity_type else False, "filter_domain": condition,
        }, **values)

    def add_activity(self, records, activity_type=None):
        return self.env["mail.activity"].create([
            {
                "res_model_id": self.env["ir.model"]._get_id(record._name),
                "res_id": record.id,
                "activity_type_id": (activity_type or self.activity_call).id,
                "user_id": self.salesman.id,
            }
            for record in records
        ])

    def test_activity_created_of_a_type(self):
        workflow = self.activity_note_workflow("activity_created", self.activity_call)
        call_lead, todo_lead = self.create_leads(2)
        self.add_activity(call_lead)
        self.add_activity(todo_lead, self.env.ref("mail.mail_activity_data_todo"))
        run = self.runs(workflow)
        self.assertEqual(run.res_id, call_lead.id)
        self.assertEqual(run.state, "done")
        self.assertIn("fired", call_lead.message_ids[0].body)

    def test_activity_done_of_any_type_in_a_batch(self):
        workflow = self.activity_note_workflow("activity_done")
        leads = self.create_leads(3)
        todo = self.env.ref("mail.mail_activity_data_todo")
        activities = self.add_activity(leads[:2]) | self.add_activity(leads[2:], todo)
        self.assertFalse(self.runs(workflow), "created, not done")
        activities.with_user(self.salesman).action_done()
        self.assertEqual(sorted(self.runs(workflow, "done").mapped("res_id")), sorted(leads.ids))
        self.assertEqual(self.runs(workflow).user_id, self.salesman)

    def test_activity_done_when_a_followup_completes_itself(self):
        workflow = self.activity_note_workflow("activity_done", self.activity_call)
        self.create_stage_workflow(
            self.stage_qualified,
            [{"kind": "activity", "activity_type_id": self.activity_call.id, "followup_auto_complete": True}],
            name="Follow-up",
        )
        lead = self.create_leads()
        lead.write({"stage_id": self.stage_qualified.id})
        lead.write({"stage_id": self.stage_proposition.id})
        self.assertEqual(self.runs(workflow).res_id, lead.id)

    def test_activity_triggers_keep_scope_and_condition(self):
        workflow = self.activity_note_workflow(
            "activity_created", condition="[('expected_revenue', '>=', 1000)]", team_ids=[Command.set(self.team_a.ids)]
        )
        big, small = self.create_leads(2, expected_revenue=5000)
        small.expected_revenue = 10
        other_pipeline = self.create_leads(team=self.team_b, expected_revenue=5000)
        self.add_activity(big | small | other_pipeline)
        self.assertEqual(self.runs(workflow).res_id, big.id)

    def test_activity_triggers_keep_the_company(self):
        workflow = self.activity_note_workflow("activity_created")
        other_company = self.env["res.company"].create({"name": "Lead Co"})
        ours, theirs = self.create_leads(2, team_id=False, user_id=False)
        theirs.company_id = other_company
        self.add_activity(ours | theirs)
        self.assertEqual(self.runs(workflow).res_id, ours.id)

    def test_activity_trigger_on_projects(self):
        workflow = self.activity_note_workflow("activity_done", target="project.project")
        project = self.create_project()
        self.add_activity(project).action_done()
        self.assertEqual(self.runs(workflow).res_id, project.id)

    def test_followup_added_on_activity_created_fires_once(self):
        workflow = self.create_workflow([{
            "kind": "activity_created",
            "activity_type_id": self.activity_call.id,
            "actions": [{"kind": "activity", "activity_type_id": self.activity_call.id}],
        }])
        lead = self.create_leads()
        self.add_activity(lead)
        # the activity it adds does not fire it again: a loop, cut and said
        self.assertEqual(sorted(self.runs(workflow).mapped("state")), ["done", "skipped"])
        self.assertIn("loop", self.runs(workflow, "skipped").message)
        self.assertEqual(len(lead.activity_ids), 2)

    def test_activity_type_of_another_model_refused(self):
        partner_type = self.env["mail.activity.type"].create({"name": "Partner only", "res_model": "res.partner"})
        with self.assertRaisesRegex(ValidationError, "field “Activity type”: this activity type is made for another"):
            self.activity_note_workflow("activity_done", partner_type, active=False)

    def test_activities_of_other_models_cost_nothing(self):
        partners = self.env["res.partner"].create([{"name": f"Partner {index}"} for index in range(4)])

        def add_and_complete(partner):
            self.add_activity(partner).action_done()

        def create_workflows():
            for kind in ("activity_created", "activity_done"):
                self.activity_note_workflow(kind, name=kind)

        self.assert_no_extra_query(add_and_complete, create_workflows, partners)
        self.assertFalse(self.env["workflow.automation.run"].search([("res_model", "=", "res.partner")]))


@tagged("post_install", "-at_install")
class TestFollowupConcurrency(CommittedWorkflowCase):
    """Two users mark the last two activities of a plan done at the same moment, on real,
    separately committed cursors: the effect runs once, after Odoo's retry."""

    def setUp(self):
        super().setUp()
        self.ids = self.commit_stage_workflow(
            "Concurrent follow-up",
            {"kind": "activity", "followup_mode": "plan", "followup_effect": "mark_won"},
            ["Concurrent"],
            plan_templates=[
                {"activity_type_id": self.env.ref("mail.mail_activity_data_call").id, "summary": name}
                for name in ("First call", "Second call")
            ],
        )
        with self.registry.cursor() as cr:
            lead = api.Environment(cr, SUPERUSER_ID, {})["crm.lead"].browse(self.ids["leads"])
            self.ids["activities"] = lead.activity_ids.sorted("summary").ids

    def mark_done(self, cr, index):
        api.Environment(cr, SUPERUSER_ID, {})["mail.activity"].browse(self.ids["activities"][index]).action_done()

    def test_last_two_activities_done_at_once_run_the_effect_once(self):
        with self.registry.cursor() as first, self.registry.cursor() as second:
            self.mark_done(first, 0)
            second.execute("SET LOCAL lock_timeout = '200ms'")
            with self.assertRaises(errors.LockNotAvailable):
                self.mark_done(second, 1)  # waits for the first: fails, as a request Odoo then retries
            second.rollback()
            first.commit()
            self.mark_done(second, 1)  # the retry
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertTrue(env["crm.lead"].browse(self.ids["leads"][0]).stage_id.is_won)
            runs = env["workflow.automation.run"].search([("workflow_id", "=", self.ids["workflow"])])
            self.assertEqual(runs.filtered("followup_effect").mapped("state"), ["done"])
