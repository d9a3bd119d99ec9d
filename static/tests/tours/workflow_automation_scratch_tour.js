/** @odoo-module **/

import { registry } from "@web/core/registry";
import * as form from "@crm_workflow_automation/../tests/tours/workflow_form_steps";

// An admin builds a workflow from scratch, saving nothing until the end: a new workflow,
// two new triggers in it, new actions in the second one. Each picker of an action (e-mail
// template, activity plan, fields of a webhook) offers the records of the workflow's
// target at once, the e-mail says how to preview it, and only the kinds of the target are
// offered (no "Project closed" for opportunities).
registry.category("web_tour.tours").add("crm_workflow_automation_scratch_tour", {
    url: "/odoo/action-crm_workflow_automation.workflow_automation_action_crm",
    steps: () => [
        ...form.newWorkflowSteps("Tour from scratch"),
        ...form.offeredSteps(form.TRIGGER_DIALOG, "kind", ["Opportunity won"], ["Project closed"]),
        // A first trigger: the workflow's target can no longer be changed (it is read-only)
        ...form.chooseSteps(form.TRIGGER_DIALOG, "kind", "Record created"),
        {
            content: "Keep the first trigger",
            trigger: `${form.TRIGGER_DIALOG} .o_form_button_save`,
            run: "click",
        },
        {
            content: "Add a second trigger",
            trigger: "body:not(:has(.modal)) .o_field_widget[name=trigger_ids] .o_field_x2many_list_row_add a",
            run: "click",
        },
        ...form.chooseSteps(form.TRIGGER_DIALOG, "kind", "Stage reached"),
        ...form.pickSteps(form.TRIGGER_DIALOG, "stage_id", "Qualified"),
        ...form.addActionSteps("Send an e-mail"),
        ...form.pickSteps(form.ACTION_DIALOG, "mail_template_id", "Tour scratch proposal"),
        {
            content: "The action is not saved yet: the form says to save before previewing",
            trigger: `${form.ACTION_DIALOG} .o_workflow_preview_hint:contains('Save the workflow')`,
        },
        {
            content: "and offers no Preview button that would fail",
            trigger: `${form.ACTION_DIALOG}:not(:has(button[name=action_preview_template]))`,
        },
        ...form.saveActionSteps("Send an e-mail"),
        ...form.addActionSteps("Add a follow-up"),
        {
            content: "Apply an activity plan",
            trigger: `${form.ACTION_DIALOG} .o_field_widget[name=followup_mode] input[data-value=plan]`,
            run: "click",
        },
        ...form.pickSteps(form.ACTION_DIALOG, "activity_plan_id", "Tour scratch plan"),
        ...form.saveActionSteps("Add a follow-up"),
        ...form.addActionSteps("Send a webhook"),
        ...form.webhookSteps(),
        ...form.saveActionSteps("Send a webhook"),
        ...form.saveWorkflowSteps(),
    ],
});
