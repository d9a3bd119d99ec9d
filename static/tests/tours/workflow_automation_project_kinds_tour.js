/** @odoo-module **/

import { registry } from "@web/core/registry";
import * as form from "@crm_workflow_automation/../tests/tours/workflow_form_steps";

// An admin builds a project workflow: only the triggers, actions and follow-up effects of
// projects are offered (no "Opportunity won", no "Mark as won", no "Copy into another pipeline"),
// and the e-mail templates of projects.
registry.category("web_tour.tours").add("crm_workflow_automation_project_kinds_tour", {
    url: "/odoo/action-crm_workflow_automation.workflow_automation_action_project",
    steps: () => [
        ...form.newWorkflowSteps("Tour project kinds"),
        ...form.offeredSteps(
            form.TRIGGER_DIALOG, "kind", ["Project closed"], ["Opportunity won", "Opportunity lost", "Opportunity restored"]
        ),
        ...form.chooseSteps(form.TRIGGER_DIALOG, "kind", "Project closed"),
        {
            content: "Add an action",
            trigger: `${form.TRIGGER_DIALOG} .o_field_widget[name=action_ids] .o_field_x2many_list_row_add a`,
            run: "click",
        },
        ...form.offeredSteps(
            form.ACTION_DIALOG, "kind", ["Post an internal note"], ["Mark as won", "Mark as lost", "Copy into another pipeline"]
        ),
        ...form.chooseSteps(form.ACTION_DIALOG, "kind", "Add a follow-up"),
        ...form.offeredSteps(form.ACTION_DIALOG, "followup_effect", ["Close the project"], ["Mark as won"]),
        ...form.pickSteps(form.ACTION_DIALOG, "activity_type_id", "To-Do"),
        ...form.saveActionSteps("Add a follow-up"),
        ...form.addActionSteps("Send an e-mail"),
        ...form.pickSteps(form.ACTION_DIALOG, "mail_template_id", "Tour project news"),
        ...form.saveActionSteps("Send an e-mail"),
        ...form.saveWorkflowSteps(),
    ],
});
