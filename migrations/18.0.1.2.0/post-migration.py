"""Runs keep their workflow, trigger, company and user in a firing, shared with the runs fired
with them (issue 13): one foreign key on each run instead of four.

Existing runs get one firing per distinct set of these values; the former columns go, with
their foreign keys and indexes (and the date triggers' former unique index, replaced by one
on the action, the record and the occurrence).
"""


def migrate(cr, version):
    cr.execute("""
        INSERT INTO workflow_automation_firing (workflow_id, trigger_id, company_id, user_id)
        SELECT DISTINCT workflow_id, trigger_id, company_id, user_id FROM workflow_automation_run;

        UPDATE workflow_automation_run run SET firing_id = firing.id
          FROM workflow_automation_firing firing
         WHERE COALESCE(firing.workflow_id, 0) = COALESCE(run.workflow_id, 0)
           AND COALESCE(firing.trigger_id, 0) = COALESCE(run.trigger_id, 0)
           AND firing.company_id = run.company_id
           AND COALESCE(firing.user_id, 0) = COALESCE(run.user_id, 0);

        ALTER TABLE workflow_automation_run
            ALTER COLUMN firing_id SET NOT NULL,
            DROP COLUMN workflow_id,
            DROP COLUMN trigger_id,
            DROP COLUMN company_id,
            DROP COLUMN user_id;
    """)
