/** @odoo-module **/

import { Chatter } from "@mail/chatter/web_portal/chatter";
import { patch } from "@web/core/utils/patch";

// An activity created or marked done may fire a workflow that changes its record (a
// follow-up's "when completed" effect wins the deal): the open form reloads its record.
// The records that workflows watch are those whose form shows their test flag.
patch(Chatter.prototype, {
    onActivityChanged(thread) {
        super.onActivityChanged(thread);
        if (this.props.webRecord?.activeFields.workflow_test_id) {
            this.reloadParentView();
        }
    },
});
