import json

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import SQL, mute_logger

from .common import WorkflowAutomationCase

# What the audit wrote into a note: a secret read under the action's elevated rights
READ_SECRET = "{{ object.env['ir.config_parameter'].sudo().get_param('database.secret') }}"
# ... and the administrator's password changed
WRITE_PASSWORD = "{{ object.env['res.users'].sudo().browse(%s).write({'password': 'owned'}) }}"


@tagged("post_install", "-at_install")
class TestTemplateAuthor(WorkflowAutomationCase):
    """Texts render with their author's powers: a workflow manager who is not a Mail Template
    Editor may write placeholders only, as Odoo's own mail templates enforce; the action's
    elevated rights are not the template's."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = cls.new_workflow_manager()
        cls.editor = cls.new_workflow_manager("wa_template_editor")
        cls.editor.groups_id += cls.env.ref("mail.group_mail_template_editor")
        cls.secret = cls.env["ir.config_parameter"].sudo().get_param("database.secret")
        cls.admin = cls.env.ref("base.user_admin")
        cls.env["res.lang"]._activate_lang("fr_FR")

    def test_the_users_are_who_they_should_be(self):
        self.assertFalse(self.manager.has_group("mail.group_mail_template_editor"))
        self.assertFalse(self.manager.has_group("base.group_system"))
        self.assertTrue(self.editor.has_group("mail.group_mail_template_editor"))

    def create_as(self, user, actions, name="Delegated"):
        """A switched-off workflow of ``actions`` on reaching Qualified, created by ``user`` over RPC."""
        return self.env["workflow.automation"].with_user(user).create({
            "name": name,
            "target": "crm.lead",
            "team_ids": [Command.set(self.team_a.ids)],
            "trigger_ids": [Command.create({
                "kind": "stage_reached",
                "stage_id": self.stage_qualified.id,
                "action_ids": [Command.create(action) for action in actions],
            })],
        })

    def switch_on_and_qualify(self, workflow):
        """Switch ``workflow`` on; the salesman drags a new lead to Qualified."""
        workflow.active = True
        return self.qualify(user=self.salesman, drag=True)

    def admin_password(self):
        self.env.flush_all()
        self.env.cr.execute(SQL("SELECT password FROM res_users WHERE id = %s", self.admin.id))
        return self.env.cr.fetchone()[0]

    # ------------------------------------------------------------------
    # At save
    # ------------------------------------------------------------------

    def test_a_non_editor_cannot_save_an_expression_in_any_text(self):
        cases = [
            ({"kind": "note", "note_body": READ_SECRET}, "Post an internal note", "Note text"),
            ({"kind": "activity", "activity_type_id": self.activity_call.id, "activity_summary": READ_SECRET},
             "Add a follow-up", "Summary"),
            ({"kind": "activity", "activity_type_id": self.activity_call.id, "activity_note": READ_SECRET},
             "Add a follow-up", "Note"),
            ({"kind": "copy_lead", "new_team_id": self.team_b.id, "new_name": READ_SECRET},
             "Copy into another pipeline", "Name of the new record"),
            ({"kind": "repeat_lead", "new_name": "{{ object.partner_id.name or object.name }}"},
             "Create a repeat lead or opportunity", "Name of the new record"),
        ]
        for action, action_name, field in cases:
            with self.subTest(field=field, kind=action["kind"]), self.assertRaisesRegex(
                ValidationError,
                f"^Workflow “Delegated”, action “{action_name}”, field “{field}”: only members of the group "
                "“Mail Template Editor” may write expressions here",
            ):
                self.create_as(self.manager, [action])

    def test_a_non_editor_cannot_slip_an_expression_in_later(self):
        workflow = self.create_as(self.manager, [{"kind": "note", "note_body": "Hello {{ object.name }}"}])
        action = workflow.trigger_ids.action_ids.with_user(self.manager)
        with self.assertRaisesRegex(ValidationError, "field “Note text”: only members"):
            action.write({"note_body": WRITE_PASSWORD % self.admin.id})
        with self.assertRaisesRegex(ValidationError, "field “Note text”: only members"):
            action.update_field_translations("note_body", {"fr_FR": READ_SECRET})
        action.write({"note_body": "Hi {{ object.name }}", "template_author_id": self.admin.id})
        self.assertEqual(action.template_author_id, self.manager, "the author is who writes, not who they say")

    def test_a_non_editor_may_use_the_placeholders_odoo_offers_them(self):
        workflow = self.create_as(self.manager, [{
            "kind": "note", "note_body": "{{ object.name }} for {{ object.partner_id.name ||| nobody }}",
        }])
        lead = self.switch_on_and_qualify(workflow)
        self.assertEqual(self.runs(workflow).state, "done")
        self.assertIn("Opportunity 0 for Acme Corp", lead.message_ids[0].body)

    def test_an_editor_may_write_expressions(self):
        """The control: a Mail Template Editor writes code, as in Odoo's mail templates."""
        workflow = self.create_as(self.editor, [{
            "kind": "note", "note_body": "{{ object.partner_id.name.upper() or object.name }}",
        }])
        lead = self.switch_on_and_qualify(workflow)
        self.assertEqual(self.runs(workflow).state, "done")
        self.assertIn("ACME CORP", lead.message_ids[0].body)

    def test_a_non_editor_cannot_edit_the_texts_of_an_editor(self):
        workflow = self.create_as(self.editor, [{
            "kind": "activity", "activity_type_id": self.activity_call.id,
            "activity_summary": "{{ object.partner_id.name.upper() }}", "activity_note": "Call",
        }])
        action = workflow.trigger_ids.action_ids.with_user(self.manager)
        with self.assertRaisesRegex(ValidationError, "field “Summary”: only members"):
            action.activity_note = "Call {{ object.name }}"
        action.invalidate_recordset()
        action.activity_deadline = 3  # not a text: the editor's summary stays the editor's
        self.assertEqual(action.template_author_id, self.editor)
        lead = self.switch_on_and_qualify(workflow)
        self.assertEqual(lead.activity_ids.summary, "ACME CORP")

    # ------------------------------------------------------------------
    # At run time
    # ------------------------------------------------------------------

    def plant(self, workflow, author, text):
        """``text`` written into the note straight in the database, by ``author`` as far as it says."""
        action = workflow.trigger_ids.action_ids
        self.env.flush_all()
        self.env.cr.execute(SQL(
            "UPDATE workflow_automation_action SET note_body = %s::jsonb, template_author_id = %s WHERE id = %s",
            json.dumps({"en_US": text}), author.id, action.id,
        ))
        action.invalidate_recordset()

    @mute_logger("odoo.addons.crm_workflow_automation.models.workflow_automation_action")
    def test_an_expression_planted_for_a_non_editor_is_refused_at_run_time(self):
        password = self.admin_password()
        workflow = self.create_as(self.manager, [{"kind": "note", "note_body": "Hello"}])
        for attack in (READ_SECRET, WRITE_PASSWORD % self.admin.id):
            with self.subTest(attack=attack):
                self.plant(workflow, self.manager, attack)
                workflow.active = False
                lead = self.switch_on_and_qualify(workflow)
                run = self.runs(workflow).filtered(lambda r, lead=lead: r.res_id == lead.id)
                self.assertEqual(run.state, "failed")
                self.assertEqual(
                    run.message,
                    "Template “Note text”: only members of the group “Mail Template Editor” may write "
                    f"expressions here, and its author, {self.manager.name}, is not one.",
                )
                self.assertNotIn(self.secret, "".join(lead.message_ids.mapped("body")))
        self.assertEqual(self.admin_password(), password, "the administrator's password is unchanged")

    def test_data_files_and_editors_texts_render_fully(self):
        """Consultants' XML files are installed by the superuser: their texts are trusted. An
        editor who saves a text vouches for it; an editor who changes anything else does not."""
        workflow = self.create_as(self.manager, [{"kind": "note", "note_body": "Hello"}])
        action = workflow.trigger_ids.action_ids
        self.plant(workflow, self.manager, "{{ object.name.upper() }}")
        action.with_user(self.editor).sequence = 5
        self.assertEqual(action.template_author_id, self.manager, "not vouched for")
        action.with_user(self.editor).note_body = "{{ object.name.upper() }}!"
        self.assertEqual(action.template_author_id, self.editor)
        lead = self.switch_on_and_qualify(workflow)
        self.assertIn("OPPORTUNITY 0!", lead.message_ids[0].body)

        consultant = self.env["workflow.automation.action"].create({
            "trigger_id": self.create_workflow([{"kind": "create"}], active=False).trigger_ids.id,
            "kind": "note",
            "note_body": "{{ object.partner_id.name or object.name }}",
        })
        self.assertTrue(consultant.template_author_id._is_superuser())

    def test_a_template_editor_losing_the_right_loses_the_power(self):
        editor = new_test_user(
            self.env, login="wa_former_editor",
            groups="sales_team.group_sale_manager,crm_workflow_automation.group_workflow_automation_manager,"
                   "mail.group_mail_template_editor",
        )
        workflow = self.create_as(editor, [{"kind": "note", "note_body": "{{ object.name.upper() }}"}])
        editor.groups_id -= self.env.ref("mail.group_mail_template_editor")
        with mute_logger("odoo.addons.crm_workflow_automation.models.workflow_automation_action"):
            self.switch_on_and_qualify(workflow)
        self.assertEqual(self.runs(workflow).state, "failed")

    def test_a_non_editor_may_use_every_preset(self):
        """The presets' texts hold placeholders only: copying them is writing them."""
        presets = self.env["workflow.automation"].with_context(active_test=False).search([("is_preset", "=", True)])
        self.assertTrue(presets)
        Wizard = self.env["workflow.automation.preset.wizard"].with_user(self.manager)
        for preset in presets:
            with self.subTest(preset=preset.name):
                action = Wizard.create({"preset_id": preset.id}).action_apply()
                copy = self.env["workflow.automation"].browse(action["res_id"])
                self.assertEqual(copy.trigger_ids.action_ids.template_author_id, self.manager)


@tagged("post_install", "-at_install")
class TestConditionHoldsNoCode(WorkflowAutomationCase):
    """A condition is a domain evaluated under the engine's elevated rights: ``user`` may only
    give plain ids, never the record whose methods would run with those rights."""

    @staticmethod
    def create_with_condition(Workflow, name, condition):
        trigger = {"kind": "create", "filter_domain": condition}
        return Workflow.create({"name": name, "trigger_ids": [Command.create(trigger)]})

    def test_a_condition_cannot_reach_the_orm_through_the_user(self):
        manager = self.new_workflow_manager()
        admin = self.env.ref("base.user_admin")
        self.env.flush_all()
        self.env.cr.execute(SQL("SELECT password FROM res_users WHERE id = %s", admin.id))
        password = self.env.cr.fetchone()[0]
        Workflow = self.env["workflow.automation"].with_user(manager)
        attack = f"[('id', '!=', user.env['res.users'].sudo().browse({admin.id}).write({{'password': 'owned'}}))]"
        with self.assertRaisesRegex(ValidationError, "field “Condition”: .*“user.env”"):
            self.create_with_condition(Workflow, "Sly", attack)
        self.env.flush_all()
        self.env.cr.execute(SQL("SELECT password FROM res_users WHERE id = %s", admin.id))
        self.assertEqual(self.env.cr.fetchone()[0], password, "the administrator's password is unchanged")

        fair = "[('user_id', '=', user.id), ('company_id', 'in', user.company_ids.ids), ('create_uid', '=', uid)]"
        workflow = self.create_with_condition(Workflow, "Fair", fair)
        self.assertEqual(workflow.trigger_ids.filter_domain, fair)
