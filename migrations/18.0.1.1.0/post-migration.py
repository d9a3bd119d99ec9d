"""Runs keep only the indexes they need (issue 13): drop those of earlier versions.

The queue's due runs and the date triggers' occurrences now have partial indexes (the run
model's ``init``); the company, state and due date are no longer indexed on every run, and
Odoo's log columns are no longer written (nor their foreign keys checked).
"""


def migrate(cr, version):
    cr.execute("""
        ALTER TABLE workflow_automation_run DROP CONSTRAINT IF EXISTS workflow_automation_run_occurrence_uniq;
        DROP INDEX IF EXISTS workflow_automation_run__company_id_index;
        DROP INDEX IF EXISTS workflow_automation_run__state_index;
        DROP INDEX IF EXISTS workflow_automation_run__date_due_index;
    """)
