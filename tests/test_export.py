import ast
import base64
import io
import zipfile

from freezegun import freeze_time
from lxml import etree

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged
from odoo.tools import convert, file_path

from ..wizards.workflow_automation_export import SHIPPED_MODELS, SITE_MODELS, WorkflowDataFile
from .common import WorkflowAutomationCase
from .export_round_trip import NOW, components, fire_same_change, structure

SAMPLE = "crm_workflow_automation/tests/data/consultant_workflow.xml"


@tagged("post_install", "-at_install")
class TestExportImport(WorkflowAutomationCase):
    """Workflows exported as a data file, then installed back, as a module and through the wizard."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.partner_id.tz = "UTC"
        cls.manager = cls.new_workflow_manager()
        # who installs the round trips' files: their templates hold expressions, their triggers
        # name fields, which Odoo lets Mail Template Editors and Access Rights administrators handle
        cls.consultant = new_test_user(
            cls.env, login="wa_consultant",
            groups="sales_team.group_sale_manager,project.group_project_manager,mail.group_mail_template_editor,"
            "base.group_erp_manager,crm_workflow_automation.group_workflow_automation_manager",
        )

    # ------------------------------------------------------------------
    # The user's paths: the export wizard, a module's data file, the import wizard
    # ------------------------------------------------------------------

    def export(self, workflows, user=None, **options):
        """"Export as XML" as the workflow manager clicks it on ``workflows``: the downloaded file."""
        Export = self.env["workflow.automation.export"].with_user(user or self.manager)
        wizard = Export.with_context(active_model="workflow.automation", active_ids=workflows.ids).create(options)
        action = wizard.action_export_xml()
        self.assertEqual(action["type"], "ir.actions.act_url")
        self.assertIn(f"/web/content/workflow.automation.export/{wizard.id}/data_file/", action["url"])
        return base64.b64decode(wizard.data_file)

    def install(self, content, module="cwa_export_shipped"):
        """The file loaded as a module's data file is at install (Odoo's loader, as superuser)."""
        xml_file = io.BytesIO(content)
        xml_file.name = f"{module}/data/workflow_automation_data.xml"
        convert.convert_xml_import(self.env, module, xml_file, idref={}, mode="init")
        return self.env["ir.model.data"].search([("module", "=", module), ("model", "=", "workflow.automation")])

    def import_file(self, content, user=None, filename="workflows.xml"):
        """"Import workflows" as a workflow manager uses it: the workflows it opens."""
        wizard = self.env["workflow.automation.import.wizard"].with_user(user or self.consultant).create({
            "data_file": base64.b64encode(content), "filename": filename,
        })
        action = wizard.action_import()
        return self.env["workflow.automation"].with_context(active_test=False).search(action["domain"])

    def import_error(self, content, user=None):
        with self.assertRaises(UserError) as caught:
            self.import_file(content, user=user or self.manager)
        return str(caught.exception)

    # ------------------------------------------------------------------
    # What a workflow does
    # ------------------------------------------------------------------

    def site_values(self, workflow):
        """What the export leaves empty: the users, pipelines, contacts and projects."""
        return [
            {name: record[name] for name, field in record._fields.items()
             if field.comodel_name in SITE_MODELS and field.copy and field.store and name != "company_id"}
            for record in components(workflow)
        ]

    def fill_in_from(self, workflow, site_values):
        """The importer fills in what the export left empty, as it was in the source database."""
        for record, values in zip(components(workflow), site_values, strict=True):
            record.write({
                name: value.id if record._fields[name].type == "many2one" else [Command.set(value.ids)]
                for name, value in values.items()
            })

    def fire_same_change(self, workflow):
        """The runs of the same change on ``workflow``, what they did to the records, and the records."""
        runs, records = fire_same_change(self.env, workflow, self.team_a, self.salesman, self.partner)
        records = records.with_context(active_test=False)
        created = self.env[records._name].with_context(active_test=False).search([("id", ">", min(records.ids))])
        return (runs, [self.outcome(record) for record in records]), records | created

    def remove(self, workflow, records):
        """Remove ``workflow``, the records it fired on or made, and the records of its own that
        the file holds: the file must bring them back."""
        fresh_modules = WorkflowDataFile(self.env, False).fresh_modules
        own = []
        for record in components(workflow):
            for name, field in record._fields.items():
                if field.comodel_name in SHIPPED_MODELS and field.store:
                    own += record[name].filtered(
                        lambda r: r.get_external_id()[r.id].split(".")[0] not in fresh_modules
                    )
        workflow.unlink()
        records.unlink()
        for record in sorted(own, key=lambda r: r._name != "mail.activity.plan"):
            record.exists().unlink()

    def outcome(self, record):
        created = self.env[record._name].with_context(active_test=False).search([
            ("id", ">", record.id), ("name", "not in", ["Round trip", "Opportunity 0"]),
        ])
        return {
            "stage": record.stage_id.name,
            "owner": record.user_id.name,
            "active": record.active,
            "tags": sorted(record.tag_ids.mapped("name")),
            "activities": sorted(record.activity_ids.mapped("summary")),
            "notes": sorted(message.preview for message in record.message_ids if message.subtype_id.internal),
            "followers": sorted(record.message_partner_ids.mapped("name")),
            "created": sorted(created.mapped("name")),
        }

    def round_trip(self, workflow, load):
        """Fire ``workflow``, export it, remove it, ``load`` the file, fill in what was left empty,
        fire the same change; the structures and the runs of both are the same."""
        with freeze_time(NOW):
            before, site_values = structure(self.env, workflow), self.site_values(workflow)
            fired, records = self.fire_same_change(workflow)
            content = self.export(workflow)
            self.remove(workflow, records)
            [copy] = load(content)
            self.assertFalse(copy.active, "imported switched off")
            self.assertTrue(copy.is_imported)
            self.fill_in_from(copy, site_values)
            self.assertEqual(structure(self.env, copy), before)
            self.assertEqual(self.export(copy), content, "exporting the copy gives the same file")
            self.assertEqual(self.fire_same_change(copy)[0], fired)
        return content

    def installed(self, content):
        """The workflows of ``content`` installed as the data file of a module of their own."""
        module = f"cwa_export_shipped_{len(self.env['ir.model.data'].search([('module', '=like', 'cwa_export_%')]))}"
        return self.env["workflow.automation"].with_context(active_test=False).browse(
            self.install(content, module).mapped("res_id")
        )

    # ------------------------------------------------------------------
    # Round trips
    # ------------------------------------------------------------------

    def test_round_trip_of_every_preset_as_a_module(self):
        for workflow in list(self.preset_copies()):
            with self.subTest(workflow=workflow.name):
                self.round_trip(workflow, self.installed)

    def test_round_trip_of_every_preset_through_the_wizard(self):
        for workflow in list(self.preset_copies()):
            with self.subTest(workflow=workflow.name):
                self.round_trip(workflow, self.import_file)

    def test_round_trip_of_the_consultant_sample(self):
        convert.convert_file(self.env, "my_consulting", "consultant_workflow.xml", idref={}, mode="init",
                             pathname=file_path(SAMPLE))
        workflow = self.env.ref("my_consulting.workflow_automation_big_deal_qualified")
        workflow.active = False
        content = self.round_trip(workflow, self.import_file)
        self.assertIn(b'<record id="mail_template_quote_reminder" model="mail.template">', content)

    def test_round_trip_of_every_action_kind(self):
        content = self.round_trip(self.every_action_workflow(), self.import_file)
        root = etree.fromstring(content)
        shipped = [(record.get("model"), record.get("id")) for record in root.iter("record")]
        self.assertEqual(
            [model for model, _id in shipped],
            ["mail.activity.type", "mail.activity.plan", "mail.template", "crm.tag", "crm.tag", "crm.stage",
             "crm.lost.reason", "workflow.automation"],
            "the records a fresh database lacks come first, each before what uses it",
        )
        self.assertTrue(root.get("noupdate"))
        self.assertIn(b"'set_value_res_id': ref('utm.utm_medium_email')", content)

    def test_every_action_kind_installs_as_a_module(self):
        workflow = self.every_action_workflow()
        self.round_trip(workflow, self.installed)

    # ------------------------------------------------------------------
    # External ids and what is left empty
    # ------------------------------------------------------------------

    def test_record_without_external_id_gets_one_as_odoo_export_makes_it(self):
        stage = self.env["crm.stage"].create({"name": "Negotiation"})
        workflow = self.create_stage_workflow(stage, [{"kind": "assign_user", "user_id": self.owner.id}],
                                              active=False)
        self.assertFalse(stage.get_external_id()[stage.id])
        content = self.export(workflow)
        external_id = stage.get_external_id()[stage.id]
        self.assertRegex(external_id, rf"^__export__\.crm_stage_{stage.id}_[0-9a-f]{{8}}$")
        local_id = external_id.split(".")[1]
        self.assertIn(f'<record id="{local_id}" model="crm.stage">'.encode(), content)
        self.assertIn(f"'stage_id': ref('{local_id}')".encode(), content)
        self.assertEqual(self.export(workflow), content, "the same external id on the next export")
        self.assertIn(b"'stage_id': ref('crm.stage_lead1')", self.export(self.create_stage_workflow(
            self.stage_new, [{"kind": "note", "note_body": "x"}], active=False)))

    def test_users_and_pipelines_are_left_empty_unless_asked(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "assign_user", "user_id": self.env.ref("base.user_admin").id}],
            active=False,
        )
        content = self.export(workflow)
        self.assertNotIn(b"user_id", content)
        self.assertNotIn(b"team_ids", content)
        self.assertIn(b'<field name="active" eval="False"/>', content)
        referenced = self.export(workflow, reference_site_records=True, switched_on=True)
        self.assertIn(b"'user_id': ref('base.user_admin')", referenced)
        self.assertNotIn(b"team_ids", referenced, "Pipeline A has no external id: left empty")
        self.assertIn(b'<field name="active" eval="True"/>', referenced)

    def test_incomplete_copy_is_checked_on_switching_on(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{"kind": "assign_user", "user_id": self.owner.id}],
                                              active=False)
        [copy] = self.import_file(self.export(workflow))
        self.assertFalse(copy.trigger_ids.action_ids.user_id)
        with self.assertRaisesRegex(UserError, "field “User”: this action needs a value"):
            copy.active = True
        copy.trigger_ids.action_ids.user_id = self.owner
        copy.active = True
        self.assertTrue(copy.active)

    def test_switched_on_export_installs_switched_on_and_the_wizard_switches_it_off(self):
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "note", "note_body": "Qualified"}], teams=self.env["crm.team"],
            active=False,
        )
        content = self.export(workflow, switched_on=True)
        self.assertTrue(self.installed(content).active)
        [imported] = self.import_file(content)
        self.assertFalse(imported.active)

    def test_module_zip(self):
        workflow = self.env.ref("crm_workflow_automation.workflow_automation_preset_won_repeat")
        wizard = self.env["workflow.automation.export"].with_user(self.manager).create({
            "workflow_ids": [Command.set(workflow.ids)], "module_name": "acme_workflows",
        })
        action = wizard.action_export_module()
        self.assertTrue(action["url"].endswith("/data_file/acme_workflows.zip?download=true"))
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(wizard.data_file))) as module:
            self.assertEqual(sorted(module.namelist()), [
                "acme_workflows/README.md", "acme_workflows/__init__.py", "acme_workflows/__manifest__.py",
                "acme_workflows/data/workflow_automation_data.xml",
            ])
            manifest = ast.literal_eval(module.read("acme_workflows/__manifest__.py").decode())
            readme = module.read("acme_workflows/README.md").decode()
            data = module.read("acme_workflows/data/workflow_automation_data.xml")
        self.assertEqual(manifest["depends"], ["crm_workflow_automation"])
        self.assertEqual((manifest["version"], manifest["license"]), ("18.0.1.0.0", "LGPL-3"))
        self.assertEqual(manifest["data"], ["data/workflow_automation_data.xml"])
        self.assertIn(f"- **{workflow.name}**", readme)
        self.assertEqual(data, self.export(workflow))
        wizard.module_name = "Acme Workflows"
        with self.assertRaisesRegex(UserError, "is not a technical name"):
            wizard.action_export_module()

    def test_readme_shows_an_exported_preset(self):
        preset = self.env.ref("crm_workflow_automation.workflow_automation_preset_won_admin_lost_tag")
        with open(file_path("crm_workflow_automation/README.md"), encoding="utf-8") as readme:
            self.assertIn(self.export(preset).decode().strip(), readme.read())

    # ------------------------------------------------------------------
    # Files with errors import nothing, and say where
    # ------------------------------------------------------------------

    def broken(self, replace, by):
        workflow = self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "x"}],
                                              active=False, name="Contract")
        content = self.export(workflow)
        workflow.unlink()
        self.assertIn(replace, content)
        return content.replace(replace, by)

    def assert_nothing_imported(self):
        self.assertFalse(self.env["ir.model.data"].search([("module", "=", "__import__")]))

    def test_missing_reference_names_the_record_and_the_line(self):
        content = self.broken(b"ref('crm.stage_lead2')", b"ref('crm.stage_contract')")
        message = self.import_error(content)
        line = next(number for number, text in enumerate(content.decode().splitlines(), 1) if "stage_contract" in text)
        record = etree.fromstring(content).find("record").get("id")
        self.assertEqual(
            message, f"field “To stage”: “crm.stage_contract” not found (line {line}, record {record})"
        )
        self.assert_nothing_imported()

    def test_malformed_file(self):
        message = self.import_error(self.broken(b"</record>", b"</recrd>"))
        self.assertRegex(message, r"^The file is not valid XML: .*line \d+")
        self.assert_nothing_imported()

    def test_error_of_the_models_imports_nothing(self):
        """A custom stage is created before the workflow fails: it is rolled back with it."""
        stage = self.env["crm.stage"].create({"name": "Negotiation"})
        workflow = self.create_stage_workflow(stage, [{"kind": "note", "note_body": "x"}], active=False)
        content = self.export(workflow).replace(b"'kind': 'note',", b"'kind': 'note', 'delay': 99999999,")
        message = self.import_error(content)
        self.assertRegex(message, r"action “Post an internal note”, field “Delay”: at most 100 years.*"
                                  r"\(line \d+, record workflow_automation_\w+\)$")
        self.assert_nothing_imported()
        self.assertEqual(self.env["crm.stage"].search_count([("name", "=", "Negotiation")]), 1)

    def test_already_imported(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "x"}],
                                              active=False)
        content = self.export(workflow)
        self.import_file(content)
        self.assertIn("this workflow was already imported", self.import_error(content))

    # ------------------------------------------------------------------
    # Access and injection
    # ------------------------------------------------------------------

    def test_salesman_may_neither_export_nor_import(self):
        workflow = self.create_stage_workflow(self.stage_qualified, [{"kind": "note", "note_body": "x"}],
                                              active=False)
        content = self.export(workflow)
        with self.assertRaises(AccessError):
            self.export(workflow, user=self.salesman)
        with self.assertRaises(AccessError):
            self.import_file(content, user=self.salesman)
        # a wizard of the manager's, called over RPC by the salesman
        export = self.env["workflow.automation.export"].with_user(self.manager).create({
            "workflow_ids": [Command.set(workflow.ids)],
        })
        wizard = self.env["workflow.automation.import.wizard"].with_user(self.manager).create({
            "data_file": base64.b64encode(content),
        })
        for record, method in ((export, "action_export_xml"), (export, "action_export_module"),
                               (wizard, "action_import")):
            with self.subTest(method=method), self.assertRaises(AccessError):
                getattr(record.with_user(self.salesman), method)()

    def test_file_cannot_make_other_records(self):
        """A delegated workflow manager cannot make a rule, a user or anything but workflows."""
        attacks = {
            b'<record id="rule" model="ir.rule"><field name="name">x</field></record>':
                "records of “ir.rule” cannot be imported",
            b'<record id="admin" model="res.users"><field name="login">x</field></record>':
                "records of “res.users” cannot be imported",
            b'<function model="res.users" name="write" eval="[[2], {\'active\': False}]"/>':
                "a data file holds <odoo>, <data> and <record> elements only, not <function>",
            b'<record id="stage" model="crm.stage"><field name="name" eval="obj(1).env[\'res.users\']"/></record>':
                "field “name”: only literal values and ref() may be used",
            b'<record id="tpl" model="mail.template"><field name="name" file="../../etc/passwd"/></record>':
                "attribute “file” of <field> is not allowed",
            b'<record id="crm.stage_lead1" model="crm.stage"><field name="name">x</field></record>':
                "the record needs an id of letters, digits and underscores, without a module",
            b'<record id="tag" model="crm.tag" context="{}"><field name="name">x</field></record>':
                "attribute “context” of <record> is not allowed",
            b'<record id="w" model="workflow.automation"><field name="name">x</field><field name="trigger_ids" '
            b'eval="[Command.create({\'kind\': \'create\', \'action_ids\': [Command.create({\'kind\': \'assign_user\','
            b' \'user_id\': ref(\'base.user_admin\'), \'trigger_id\': obj(1)})]})]"/></record>':
                "field “trigger_id”: only literal values and ref() may be used",
            b'<record id="w2" model="workflow.automation"><field name="trigger_user_ids" '
            b'eval="[Command.create({\'login\': \'evil\', '
            b'\'groups_id\': [Command.link(ref(\'base.group_system\'))]})]"/></record>':
                "field “trigger_user_ids”: its records cannot be created by a file",
        }
        for attack, refusal in attacks.items():
            with self.subTest(attack=attack):
                message = self.import_error(b'<?xml version="1.0"?>\n<odoo>\n' + attack + b"\n</odoo>")
                self.assertIn(refusal, message)
                self.assertIn("(line 3", message)
        self.assert_nothing_imported()
        self.assertFalse(self.env["res.users"].search([("login", "=", "evil")]))

    def test_values_are_escaped(self):
        name = 'Evil "</field><function model="res.users" name="unlink"/>'
        workflow = self.create_stage_workflow(
            self.stage_qualified, [{"kind": "note", "note_body": "')]; obj(1).unlink(); ['"}], active=False,
            name=name,
        )
        [copy] = self.import_file(self.export(workflow))
        self.assertEqual(copy.name, name)
        self.assertEqual(copy.trigger_ids.action_ids.note_body, "')]; obj(1).unlink(); ['")
