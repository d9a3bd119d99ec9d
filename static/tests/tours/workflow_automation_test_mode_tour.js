/** @odoo-module **/

import { registry } from "@web/core/registry";
import { COLUMN, dragCardSteps } from "@crm_workflow_automation/../tests/tours/kanban_steps";
import { menuSteps, screenshotSteps } from "@crm_workflow_automation/../tests/tours/screenshot";

// An admin tests the switched-off workflow "Tour draft" (set up by tests/test_tours.py):
// the wizard creates a test opportunity, which the admin drags to Qualified (the draft
// schedules a call) then to Proposition (the draft's e-mail is recorded, not sent), and
// the workflow's runs show both.
const ROW = ".o_list_view .o_data_row:has(.o_data_cell[name=name]:contains('Tour draft'))";
const CARD = ".o_kanban_record:has(.o_workflow_test_badge):contains('Tour test deal')";
const WIZARD = ".modal .o_form_view";

registry.category("web_tour.tours").add("crm_workflow_automation_test_mode_tour", {
    url: "/odoo/action-crm_workflow_automation.workflow_automation_action_crm",
    steps: () => [
        {
            content: "The workflow is listed switched off (greyed)",
            trigger: `${ROW}.text-muted`,
        },
        {
            content: "Open it",
            trigger: `${ROW} .o_data_cell[name=name]`,
            run: "click",
        },
        {
            content: "It is off; test it",
            trigger: ".o_form_view:has(.o_field_widget[name=active] input:not(:checked)) button:contains('Test this workflow')",
            run: "click",
        },
        {
            content: "The wizard proposes the workflow's pipeline",
            trigger: `${WIZARD} .o_field_widget[name=team_id] input:value(Sales)`,
        },
        {
            content: "and its first stage",
            trigger: `${WIZARD} .o_field_widget[name=stage_id] input:value(New)`,
        },
        {
            content: "Name the test opportunity",
            trigger: `${WIZARD} .o_field_widget[name=name] input`,
            run: "edit Tour test deal",
        },
        {
            content: "Choose a customer",
            trigger: `${WIZARD} .o_field_widget[name=partner_id] input`,
            run: "edit Tour Customer",
        },
        {
            content: "Pick it in the list",
            trigger: `${WIZARD} .o_field_widget[name=partner_id] .o-autocomplete--dropdown-menu li:contains('Tour Customer')`,
            run: "click",
        },
        {
            content: "The customer is set",
            trigger: `${WIZARD} .o_field_widget[name=partner_id] input:value(Tour Customer)`,
        },
        ...screenshotSteps("test_wizard"),
        {
            content: "Create the test opportunity",
            trigger: ".modal button[name=action_create_test_record]",
            run: "click",
        },
        {
            content: "It opens, marked Test",
            trigger: ".o_form_view:has(.o_field_widget[name=name] textarea:value(Tour test deal)) .o_workflow_test_banner .badge:contains('Test')",
        },
        ...screenshotSteps("test_record"),
        ...menuSteps("crm.crm_menu_sales", "crm.menu_crm_opportunities"),
        ...dragCardSteps(CARD, "New", "Qualified"),
        {
            content: "The switched-off workflow fired on it: the call is scheduled",
            trigger: `${COLUMN("Qualified")} ${CARD} .o-mail-ActivityButton[title='Call Tour Customer']`,
        },
        ...dragCardSteps(CARD, "Qualified", "Proposition"),
        {
            content: "It is in Proposition",
            trigger: `${COLUMN("Proposition")} ${CARD} .o-mail-ActivityButton[title='Call Tour Customer']`,
        },
        ...screenshotSteps("test_kanban"),
        ...menuSteps("crm.crm_menu_config", "crm_workflow_automation.workflow_automation_menu_crm"),
        {
            content: "Open the workflow again",
            trigger: `${ROW} .o_data_cell[name=name]`,
            run: "click",
        },
        {
            content: "Two runs, one test record",
            trigger: ".o_form_view button[name=action_open_runs] .o_stat_value:contains(2)",
        },
        {
            content: "The test record has its smart button",
            trigger: ".o_form_view button[name=action_open_test_records] .o_stat_value:contains(1)",
        },
        ...screenshotSteps("test_workflow"),
        {
            content: "Open the runs",
            trigger: ".o_form_view button[name=action_open_runs]",
            run: "click",
        },
        {
            content: "The call was scheduled on the test opportunity",
            trigger: ".o_list_view .o_data_row:has(.o_data_cell[name=action_id]:contains('Add a follow-up')):has(.o_data_cell[name=state]:contains('Done'))",
        },
        {
            content: "The e-mail was recorded, not sent",
            trigger: ".o_list_view .o_data_row:has(.o_data_cell[name=action_id]:contains('Send an e-mail')):has(.o_data_cell[name=message]:contains('test: not sent'))",
        },
        ...screenshotSteps("test_runs"),
    ],
});
