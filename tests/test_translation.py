import re

import polib

from odoo import Command
from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, new_test_user, tagged
from odoo.tools import file_open

from .common import load_french


@tagged("post_install", "-at_install")
class TestTranslation(TransactionCase):
    """The French translation (i18n/fr.po) reaches labels, selections and error messages."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_french(cls.env)
        cls.user_fr = new_test_user(
            cls.env,
            login="wa_manager_fr",
            name="Françoise Manager",
            groups="crm_workflow_automation.group_workflow_automation_manager,sales_team.group_sale_manager",
            lang="fr_FR",
        )
        # The environment of a request made by that user: her language is in the context.
        cls.env_fr = cls.env(user=cls.user_fr, context=dict(cls.env.context, lang=cls.user_fr.lang))

    def test_field_label(self):
        field = self.env_fr["workflow.automation"].fields_get(["target"])["target"]
        self.assertEqual(field["string"], "Cible")
        self.assertEqual(field["help"], "Les enregistrements surveillés par ce workflow.")
        self.assertEqual(
            self.env["workflow.automation"].fields_get(["target"])["target"]["string"], "Target",
            "without a language in the context the label stays in English",
        )

    def test_selection_value(self):
        kinds = dict(self.env_fr["workflow.automation.trigger"].fields_get(["kind"])["kind"]["selection"])
        self.assertEqual(kinds["stage_reached"], "Étape atteinte")
        self.assertEqual(kinds["won"], "Opportunité gagnée")
        targets = dict(self.env_fr["workflow.automation"].fields_get(["target"])["target"]["selection"])
        self.assertEqual(targets["crm.lead"], "Opportunités et pistes")

    def test_error_message(self):
        with self.assertRaises(ValidationError) as caught:
            self.env_fr["workflow.automation"].create({
                "name": "Relance",
                "target": "crm.lead",
                "trigger_ids": [Command.create({"kind": "create", "filter_domain": "[('no_such_field', '=', 1)]"})],
            })
        message = str(caught.exception)
        self.assertTrue(
            message.startswith("Workflow “Relance”, champ “Condition” : la condition n'est pas un domaine valide ("),
            message,
        )
        self.assertIn("no_such_field", message)
        self.assertNotIn("is not a valid domain", message)

    def test_every_term_is_translated(self):
        """Every message of the template has a French translation, with the same placeholders."""
        with file_open("crm_workflow_automation/i18n/crm_workflow_automation.pot") as pot_file, file_open(
            "crm_workflow_automation/i18n/fr.po"
        ) as po_file:
            template = {entry.msgid for entry in polib.pofile(pot_file.read())}
            french = {entry.msgid: entry.msgstr for entry in polib.pofile(po_file.read())}
        self.assertEqual(template - set(french), set(), "missing from fr.po")
        self.assertEqual([msgid for msgid in template if not french[msgid]], [], "not translated")
        for msgid in template:
            self.assertEqual(
                sorted(re.findall(r"%\(\w+\)s|%s|%d", msgid)), sorted(re.findall(r"%\(\w+\)s|%s|%d", french[msgid])),
                msgid,
            )
