from odoo import api, fields, models


class WorkflowAutomationFiring(models.Model):
    """One trigger fired for one user: what the runs of its actions share.

    A change of 1,000 records writes 1,000 runs per action. Their workflow, trigger, company
    and triggering user are the same: kept here once, they are checked by PostgreSQL once,
    not as four foreign keys on every run (issue 13). The runs show them as related fields,
    searchable and groupable as if they were their own.
    """

    _name = "workflow.automation.firing"
    _description = "Workflow Automation Firing"
    _log_access = False

    # Runs outlive a deleted workflow: the audit trail stays, its scheduled runs are cancelled.
    workflow_id = fields.Many2one("workflow.automation", ondelete="set null", index=True, readonly=True)
    trigger_id = fields.Many2one("workflow.automation.trigger", ondelete="set null", index=True, readonly=True)
    company_id = fields.Many2one("res.company", required=True, readonly=True)
    user_id = fields.Many2one("res.users", string="Triggered by", ondelete="set null", readonly=True)

    @api.autovacuum
    def _gc_firings_without_runs(self):
        """Delete the firings whose runs were all purged by the retention."""
        self.env.cr.execute("""
            DELETE FROM workflow_automation_firing firing
             WHERE NOT EXISTS (SELECT 1 FROM workflow_automation_run run WHERE run.firing_id = firing.id)
        """)
