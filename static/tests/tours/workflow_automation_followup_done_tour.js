/** @odoo-module **/

import { registry } from "@web/core/registry";

// A salesperson marks done, from the chatter of "Tour follow-up deal", the follow-up that
// a workflow added with "When completed: mark as won": the open form shows the deal won
// at once, without a reload.
registry.category("web_tour.tours").add("crm_workflow_automation_followup_done_tour", {
    steps: () => [
        {
            content: "The deal is open, not won",
            trigger: ".o_form_view:not(:has(.ribbon:contains('Won'))) .o-mail-Activity:contains('Have the contract signed')",
        },
        {
            content: "Mark the follow-up done",
            trigger: ".o-mail-Activity:contains('Have the contract signed') .o-mail-Activity-markDone",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".o-mail-ActivityMarkAsDone button[aria-label='Done']",
            run: "click",
        },
        {
            content: "The follow-up is done",
            trigger: ".o-mail-Chatter:not(:has(.o-mail-Activity:contains('Have the contract signed')))",
        },
        {
            content: "The form shows the deal won, without a reload",
            trigger: ".o_form_view .ribbon:contains('Won')",
        },
    ],
});
