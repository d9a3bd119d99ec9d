/** @odoo-module **/

import { registry } from "@web/core/registry";
import * as form from "@crm_workflow_automation/../tests/tours/workflow_form_steps";

// An admin adds a webhook to the saved, switched-off workflow "Tour webhook": choosing
// "Send a webhook" shows the sample payload at once (no "Oops" dialog).
registry.category("web_tour.tours").add("crm_workflow_automation_webhook_tour", {
    steps: () => [
        ...form.openTriggerSteps(),
        ...form.addActionSteps("Send a webhook"),
        {
            content: "The sample payload names the workflow, with no error dialog",
            trigger: `${form.ACTION_DIALOG} .o_field_widget[name=webhook_sample_payload]:contains('Tour webhook')`,
        },
        ...form.webhookSteps(),
        ...form.saveActionSteps("Send a webhook"),
        ...form.saveWorkflowSteps(),
    ],
});
