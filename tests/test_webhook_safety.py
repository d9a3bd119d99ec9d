import re

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import WEBHOOK_ALLOWED_HOSTS, OutboundCase, load_french

URL_FIELD = "Workflow “Tell the ERP”, action “Send a webhook”, field “URL”"
NOT_PUBLIC = (
    "is not a public address (loopback, private or link-local): to allow it, list it in the system "
    "parameter “crm_workflow_automation.webhook_allowed_hosts”"
)


@tagged("post_install", "-at_install")
class TestWebhookSafety(OutboundCase):
    """A webhook calls public addresses only, unless the host is listed in a system parameter."""

    def webhook_workflow(self, url, active=True):
        return super().webhook_workflow(url, active=active, webhook_retries=0)

    def allow_hosts(self, hosts):
        self.env["ir.config_parameter"].set_param(WEBHOOK_ALLOWED_HOSTS, hosts)

    def test_unsafe_urls_are_refused_at_save(self):
        self.allow_hosts("")
        cases = [
            ("http://127.0.0.1:8069/hook", f"127.0.0.1 {NOT_PUBLIC}"),
            ("http://169.254.169.254/latest/meta-data/", f"169.254.169.254 {NOT_PUBLIC}"),
            ("http://10.1.2.3/hook", f"10.1.2.3 {NOT_PUBLIC}"),
            ("https://192.168.0.10/hook", f"192.168.0.10 {NOT_PUBLIC}"),
            ("http://172.16.5.4/hook", f"172.16.5.4 {NOT_PUBLIC}"),
            ("http://0x7f000001/hook", f"0x7f000001 {NOT_PUBLIC}"),
            ("http://2130706433/hook", f"2130706433 {NOT_PUBLIC}"),
            ("http://[::1]/hook", f"::1 {NOT_PUBLIC}"),
            ("http://[::ffff:127.0.0.1]/hook", f"::ffff:127.0.0.1 {NOT_PUBLIC}"),
            ("http://0.0.0.0/hook", f"0.0.0.0 {NOT_PUBLIC}"),
            ("https://erp:s3cret@hooks.example.com/odoo",
             "the address cannot carry a user name or password: pass a token in the path or the query instead"),
            ("https://hooks.example.com/odoo\r\nX-Injected: 1",
             "the address cannot contain spaces, line breaks or other control characters"),
            ("https://hooks.example.com/odoo\n", "the address cannot contain spaces, line breaks or other control "
             "characters"),
        ]
        for url, message in cases:
            with self.subTest(url=url), self.assertRaisesRegex(
                ValidationError, f"^{re.escape(f'{URL_FIELD}: {message}.')}$"
            ):
                self.webhook_workflow(url, active=False)
        self.assertTrue(self.webhook_workflow("https://hooks.example.com/odoo?token=abc", active=False),
                        "a public host with a token in the query is accepted")

    def test_listed_hosts_may_be_private(self):
        self.allow_hosts("erp.internal, 127.0.0.1")
        workflow = self.webhook_workflow(self.endpoint.url)
        self.qualify(user=self.salesman)
        self.run_queue()
        self.assertEqual(self.runs(workflow).state, "done")
        self.assertEqual(len(self.endpoint.received), 1)

    def test_host_resolving_to_a_private_address_is_not_called(self):
        """A name is resolved when the webhook is sent: ``localhost`` is refused, nothing is sent.
        The message names the URL without its query, which may hold a token."""
        url = self.endpoint.url.replace("127.0.0.1", "localhost") + "?token=s3cret"
        workflow = self.webhook_workflow(url)
        lead = self.qualify(user=self.salesman)
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        port = url.split(":")[2].split("/")[0]
        self.assertEqual(run.message, (
            f"The webhook to http://localhost:{port}/hook was not sent: localhost resolves to 127.0.0.1, which "
            f"{NOT_PUBLIC}."
        ))
        self.assertEqual(self.endpoint.received, [], "nothing is sent")
        self.assertEqual(lead.stage_id, self.stage_qualified, "the user's change is kept")

    def test_host_removed_from_the_list_after_save_is_not_called(self):
        workflow = self.webhook_workflow(self.endpoint.url)
        self.allow_hosts("")
        self.qualify(user=self.salesman)
        self.run_queue()
        run = self.runs(workflow)
        self.assertEqual(run.state, "failed")
        self.assertEqual(run.message, f"The webhook to {self.endpoint.url} was not sent: 127.0.0.1 {NOT_PUBLIC}.")
        self.assertEqual(self.endpoint.received, [])

    def test_refusal_in_french(self):
        self.allow_hosts("")
        load_french(self.env)
        workflow = self.webhook_workflow("https://hooks.example.com/odoo", active=False).with_context(lang="fr_FR")
        with self.assertRaisesRegex(ValidationError, re.escape(
            "champ “URL” : 169.254.169.254 n'est pas une adresse publique (boucle locale, privée ou lien local) : "
            "pour l'autoriser, ajoutez-le au paramètre système “crm_workflow_automation.webhook_allowed_hosts”."
        )):
            workflow.trigger_ids.action_ids.webhook_url = "http://169.254.169.254/latest/meta-data/"
