from collections import defaultdict, namedtuple

from odoo import _, api, fields, models
from odoo.tools import SQL

# Set while follow-ups complete themselves: their "when completed" effect does not run.
AUTO_COMPLETE_KEY = "workflow_automation_auto_complete"

# What the engine needs of an activity, kept past its deletion when it is marked done.
ActivityFact = namedtuple("ActivityFact", "res_model res_id activity_type_id action_id stage_ref")


class MailActivity(models.Model):
    _inherit = "mail.activity"

    workflow_action_id = fields.Many2one(
        "workflow.automation.action",
        string="Workflow follow-up",
        ondelete="set null",
        index="btree_not_null",
        readonly=True,
        copy=False,
        help="The workflow action that added this activity as a follow-up.",
    )
    workflow_stage_ref = fields.Integer(
        string="Stage when added",
        readonly=True,
        copy=False,
        help="The record's stage when the workflow added this follow-up.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        activities = super().create(vals_list)
        self._workflow_fire("activity_created", activities._workflow_facts())
        return activities

    def _action_done(self, feedback=False, attachment_ids=None):
        facts = self._workflow_facts()
        result = super()._action_done(feedback=feedback, attachment_ids=attachment_ids)
        if not self.env.context.get(AUTO_COMPLETE_KEY):
            self._workflow_complete_followups(facts)
        self._workflow_fire("activity_done", facts)
        return result

    def _workflow_facts(self):
        """One read for the batch, which ``_action_done`` makes anyway (``create`` has them in cache)."""
        return [
            ActivityFact(
                activity.res_model, activity.res_id, activity.activity_type_id.id,
                activity.workflow_action_id.id, activity.workflow_stage_ref,
            )
            for activity in self
        ]

    def _workflow_complete_on_stage_leave(self):
        """Mark these follow-ups done because their record left the stage: no effect runs."""
        self.with_context(**{AUTO_COMPLETE_KEY: True})._action_done(
            feedback=_("Completed automatically: the record left the stage.")
        )

    # ------------------------------------------------------------------
    # Activity triggers: on the record the activity belongs to
    # ------------------------------------------------------------------

    @api.model
    def _workflow_fire(self, event, facts):
        """Fire the ``event`` triggers on the records of the activities, a batch per model.

        Costs a dictionary lookup for activities of models no trigger watches.
        """
        facts_by_model = defaultdict(list)
        for fact in facts:
            facts_by_model[fact.res_model].append(fact)
        for model_name, model_facts in facts_by_model.items():
            Model = self.env[model_name]
            if not isinstance(Model, self.pool["workflow.automation.mixin"]):
                continue
            records = Model.browse({fact.res_id for fact in model_facts})
            specs = records._workflow_trigger_index((event,)).get(event)  # for the user who did it
            if not specs:
                continue
            ids_by_type = defaultdict(list)
            for fact in model_facts:
                ids_by_type[fact.activity_type_id].append(fact.res_id)
            records = records.sudo()
            matches = []
            for spec in specs:
                typed = records.browse(ids_by_type.get(spec.activity_type_id, ())) if spec.activity_type_id else records
                matches += records._workflow_match([spec], typed)
            records._workflow_run_matches(matches)

    # ------------------------------------------------------------------
    # Follow-ups completed: the "when completed" effect
    # ------------------------------------------------------------------

    @api.model
    def _workflow_complete_followups(self, facts):
        """Run the effects of the follow-ups whose last open activity on a record was just
        marked done (in any order), for all the records of an action at once."""
        stage_refs = {(fact.action_id, fact.res_id): fact.stage_ref for fact in facts if fact.action_id}
        if not stage_refs:
            return
        actions = self.env["workflow.automation.action"].sudo().browse({key[0] for key in stage_refs})
        actions = actions.filtered(lambda action: action._followup_effect() != "none")
        if not actions:
            return
        still_open = self.sudo().search([
            ("workflow_action_id", "in", actions.ids), ("res_id", "in", [key[1] for key in stage_refs]),
        ])
        still_open._workflow_lock()
        for activity in still_open:
            stage_refs.pop((activity.workflow_action_id.id, activity.res_id), None)
        for action in actions:
            action_stage_refs = {
                res_id: stage_ref for (action_id, res_id), stage_ref in stage_refs.items() if action_id == action.id
            }
            if action_stage_refs:
                records = self.env[action.target].sudo().browse(list(action_stage_refs))
                action._complete_followup(records, action_stage_refs, self.env.user)

    def _workflow_lock(self):
        """Lock the rows of these open activities until the commit. A transaction marking
        one of them done at the same moment then fails (lock, serialization failure or
        deadlock) and Odoo retries it: it sees this one done, and runs the effect."""
        if self:
            self.env.cr.execute(SQL("SELECT id FROM mail_activity WHERE id IN %s FOR UPDATE", tuple(self.ids)))
