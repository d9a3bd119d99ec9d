/** @odoo-module **/

import { registry } from "@web/core/registry";
import {
    BooleanToggleField,
    booleanToggleField,
} from "@web/views/fields/boolean_toggle/boolean_toggle_field";

// The "On" toggle of a workflow form: when switching on is refused (a blank left by a
// preset), the form goes back to off, so that the admin can fill the blank in; the other
// unsaved changes of the form are kept.
export class WorkflowSwitchField extends BooleanToggleField {
    async onChange(newValue) {
        try {
            await super.onChange(newValue);
        } catch (error) {
            this.state.value = !newValue;
            await this.props.record.update({ [this.props.name]: !newValue });
            throw error;
        }
    }
}

registry.category("fields").add("workflow_switch", {
    ...booleanToggleField,
    component: WorkflowSwitchField,
});
