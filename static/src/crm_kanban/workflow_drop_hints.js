/** @odoo-module **/

import { onWillStart, reactive, useSubEnv } from "@odoo/owl";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { patch } from "@web/core/utils/patch";
import { KanbanHeader } from "@web/views/kanban/kanban_header";
import { CrmKanbanRenderer } from "@crm/views/crm_kanban/crm_kanban_renderer";

// The CRM kanban asks once, when it loads, what a drop in each stage does for the user's
// pipeline (switched-on automations, in words): its column headers show it in a tooltip.
patch(CrmKanbanRenderer.prototype, {
    setup() {
        super.setup(...arguments);
        const orm = useService("orm");
        const dropHints = reactive({ hints: {}, teamId: false, canConfigure: false });
        useSubEnv({ workflowDropHints: dropHints });
        onWillStart(async () => {
            const teamId = this.props.list.context.default_team_id;
            const result = await orm.silent.call("workflow.automation.trigger", "get_stage_drop_hints", [], {
                team_id: Number.isInteger(teamId) ? teamId : false,
            });
            Object.assign(dropHints, {
                hints: result.hints,
                teamId: result.team_id,
                canConfigure: result.can_configure,
            });
        });
    },
});

patch(KanbanHeader.prototype, {
    setup() {
        super.setup(...arguments);
        this.actionService = useService("action");
    },

    /** The sentences of a CRM stage column's automations; none elsewhere. */
    get workflowDropHints() {
        const state = this.env.workflowDropHints;
        if (!state || this.group.groupByField.name !== "stage_id") {
            return [];
        }
        return state.hints[this.group.value] || [];
    },

    get workflowDropHintInfo() {
        return JSON.stringify({ hints: this.workflowDropHints });
    },

    get configItems() {
        const state = this.env.workflowDropHints;
        const canOpen = Boolean(
            state?.canConfigure && state.teamId && this.group.groupByField.name === "stage_id"
        );
        return super.configItems.map((item) =>
            item.key === "workflow_board" ? { ...item, isVisible: canOpen } : item
        );
    },

    async openWorkflowBoard() {
        const action = await this.orm.call(
            "crm.team",
            "action_open_workflow_board",
            [[this.env.workflowDropHints.teamId]],
            { context: { board_stage_id: this.group.value } }
        );
        await this.actionService.doAction(action);
    },
});

// Shown by KanbanHeader.configItems above, for the workflow managers in the CRM kanban.
registry.category("kanban_header_config_items").add(
    "workflow_board",
    {
        label: _t("Automations of this stage"),
        method: "openWorkflowBoard",
        isVisible: false,
        class: "o_workflow_board_open",
    },
    { sequence: 60 }
);
