/** @odoo-module **/

import { registry } from "@web/core/registry";
import * as form from "@crm_workflow_automation/../tests/tours/workflow_form_steps";

// An admin turns the trigger of the saved, switched-off workflow "Tour field changed" into
// "A field changes": the priority, to Very High.
registry.category("web_tour.tours").add("crm_workflow_automation_field_changed_tour", {
    steps: () => [
        ...form.openTriggerSteps(),
        ...form.chooseSteps(form.TRIGGER_DIALOG, "kind", "A field changes"),
        {
            content: "The stage of the former kind is gone; the fields picker is there",
            trigger: `${form.TRIGGER_DIALOG}:not(:has(.o_field_widget[name=stage_id])) .o_field_widget[name=changed_field_ids]`,
        },
        ...form.pickSteps(form.TRIGGER_DIALOG, "changed_field_ids", "Priority"),
        ...form.pickSteps(form.TRIGGER_DIALOG, "changed_to_selection_id", "Very High"),
        ...form.saveWorkflowSteps(),
    ],
});
