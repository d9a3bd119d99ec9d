import base64
import io
import pprint
import re
import zipfile

from lxml import etree
from lxml.builder import E

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.models import MAGIC_COLUMNS
from odoo.tools.misc import clean_context

ADDON = "crm_workflow_automation"
MANAGER_GROUP = f"{ADDON}.group_workflow_automation_manager"
# Records that a fresh database has only when a module made them: the export writes the others
# into the file, before the workflows
SHIPPED_MODELS = (
    "crm.stage",
    "project.project.stage",
    "crm.tag",
    "project.tags",
    "crm.lost.reason",
    "mail.template",
    "mail.activity.type",
    "mail.activity.plan",
)
# The source database's own people, pipelines and projects: left empty, or referenced on request
SITE_MODELS = ("res.users", "crm.team", "res.partner", "project.project")
# The importer's company is the company of the workflows and of their records
LEFT_OUT_MODELS = ("res.company",)
# Records a file may make: those written first, the workflows, and the lines they hold
IMPORTED_MODELS = (*SHIPPED_MODELS, "workflow.automation")
NESTED_MODELS = ("workflow.automation.trigger", "workflow.automation.action", "mail.activity.plan.template")
# How many times the defaults are drawn to tell the changing ones from the fixed ones
DEFAULT_DRAWS = 8
# What a record is, written even when it is the default, for the file to read well
ALWAYS_WRITTEN = ("target", "kind")
MODULE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
DATA_FILE = "data/workflow_automation_data.xml"
MANIFEST_VERSION = "18.0.1.0.0"


def check_workflow_manager(env):
    """Only workflow managers export and import workflows: checked first by every public method."""
    if not env.user.has_group(MANAGER_GROUP):
        raise AccessError(_("Only workflow managers may export or import workflows."))


class Ref(str):
    """An external id, written ``ref('...')`` in an ``eval``."""


class Links(list):
    """The external ids of a many2many value."""


class Lines(list):
    """The values of the lines of a one2many, each written ``Command.create({...})``."""


def python_source(value, indent):
    """``value`` as the Python of an ``eval`` attribute, its lines indented after column ``indent``."""
    if isinstance(value, Ref):
        return f"ref({str(value)!r})"
    if isinstance(value, Links):
        return f"[Command.set([{', '.join(python_source(ref, indent) for ref in value)}])]"
    if isinstance(value, Lines):
        pad = " " * (indent + 4)
        lines = "".join(f"{pad}Command.create({dict_source(vals, indent + 4)}),\n" for vals in value)
        return f"[\n{lines}{' ' * indent}]"
    return repr(value)


def dict_source(vals, indent):
    pad = " " * (indent + 4)
    items = "".join(f"{pad}{name!r}: {python_source(value, indent + 4)},\n" for name, value in vals.items())
    return f"{{\n{items}{' ' * indent}}}"


class WorkflowDataFile:
    """Writes workflows as a module data file: the records a fresh database lacks (noupdate),
    then the workflows with their triggers and actions, every reference by external id."""

    # columns of the <field> elements of a <record>, inside <odoo>
    FIELD_INDENT = 8

    def __init__(self, env, reference_site_records):
        self.env = env
        self.reference_site_records = reference_site_records
        module = env["ir.module.module"].sudo().search([("name", "=", ADDON)])
        self.fresh_modules = set(module.upstream_dependencies(exclude_states=("uninstalled", "uninstallable"))
                                 .mapped("name")) | {ADDON}
        self.references = {}
        self.local_ids = set()
        self.elements = []
        self.defaults = {}
        self.workflow = None

    def render(self, workflows, switched_on):
        for workflow in workflows:
            self.workflow = workflow
            values = self.values(workflow, top=True)
            self.check_chosen_users(workflow, values)
            element = self.record_element(workflow, self.local_id(self.external_id(workflow)), values)
            element.append(E.field(name="is_imported", eval="True"))
            element.append(E.field(name="active", eval=repr(switched_on)))
            self.elements.append(element)
        root = E.odoo(noupdate="1")
        root.append(etree.Comment(
            " Workflows exported by CRM Workflow Automation: list this file in the \"data\" of a module"
            " depending on crm_workflow_automation, or load it with Import workflows. "
        ))
        root.extend(self.elements)
        etree.indent(root, space="    ")
        xml = etree.tostring(root, encoding="unicode")
        # the Python of the eval attributes on several lines, as written by hand: only the indents
        # added by python_source are raw newlines there (repr() escapes those of the values)
        return ('<?xml version="1.0" encoding="utf-8"?>\n' + xml.replace("&#10;", "\n") + "\n").encode()

    # ------------------------------------------------------------------
    # Records and their values
    # ------------------------------------------------------------------

    def record_element(self, record, local_id, values=None):
        element = E.record(id=local_id, model=record._name)
        for name, value in (values or self.values(record, top=True)).items():
            element.append(self.field_element(record._fields[name], value))
        return element

    def field_element(self, field, value):
        if isinstance(value, Ref):
            return E.field(name=field.name, ref=value)
        if isinstance(value, str) and field.type in ("char", "text", "html", "selection"):
            return E.field(value, name=field.name)
        return E.field(name=field.name, eval=python_source(value, self.FIELD_INDENT))

    def values(self, record, inverse_name=None, top=False):
        """What a copy of ``record`` would take, without its defaults, the link to its parent
        (``inverse_name``) and what is left empty; the required fields of a record always."""
        defaults = self.model_defaults(record._name)
        values = {}
        for field in self.exported_fields(record._name):
            if field.name == inverse_name:
                continue
            value = self.value(record, field)
            if value is not None and (
                field.name in ALWAYS_WRITTEN or top and field.required or value != defaults.get(field.name, False)
            ):
                values[field.name] = value
        return values

    def exported_fields(self, model_name):
        """The fields a copy takes (``field.copy``); a workflow's switch is the export's option."""
        return [
            field for name, field in self.env[model_name]._fields.items()
            if field.copy and field.store and name not in MAGIC_COLUMNS and field.type != "binary"
            and not (model_name == "workflow.automation" and name == "active")
        ]

    def value(self, record, field):
        """``record``'s value of ``field`` for the file; None when left empty."""
        value = record[field.name]
        if field.type == "many2one":
            return self.reference(value) if value else False
        if field.type == "many2one_reference":
            target = record[field.model_field]
            return self.reference(self.env[target].browse(value)) if value and target else False
        if field.type == "many2many":
            refs = [ref for ref in map(self.reference, value) if ref]
            return Links(refs) if refs else (None if value else False)
        if field.type == "one2many":
            return Lines(self.values(line, field.inverse_name) for line in value)
        if field.type in ("date", "datetime"):
            return field.to_string(value) if value else False
        if field.type == "html":
            return str(value) if value else False
        return value

    def model_defaults(self, model_name):
        """The defaults a record of ``model_name`` gets wherever it is loaded: not those of the
        context, nor the changing ones (a random color)."""
        if model_name not in self.defaults:
            Model = self.env[model_name]
            names = [name for name, field in Model._fields.items() if field.type not in (
                "many2one", "many2many", "one2many", "many2one_reference")]
            # a random default (crm.tag's color, 1 to 11) repeats by chance: one of 8 draws differs
            first, *others = (Model.default_get(names) for _draw in range(DEFAULT_DRAWS))
            self.defaults[model_name] = {
                name: value for name, value in first.items() if all(other.get(name) == value for other in others)
            }
        return self.defaults[model_name]

    def check_chosen_users(self, record, values):
        """A workflow fired by chosen users only cannot lose them all: it would not import."""
        if record.triggered_by == "chosen" and not values.get("trigger_user_ids") \
                and not values.get("trigger_group_ids"):
            raise UserError(_(
                "The workflow “%s” fires for chosen users only, and they are specific to this database: "
                "export it with “Reference users and pipelines”, or choose groups.", record.display_name,
            ))

    # ------------------------------------------------------------------
    # References
    # ------------------------------------------------------------------

    def reference(self, record):
        """The external id the file refers to ``record`` by (written into the file first when a
        fresh database lacks it); None when left empty."""
        key = (record._name, record.id)
        if key not in self.references:
            self.references[key] = self.make_reference(record)
        return self.references[key]

    def make_reference(self, record):
        if record._name in LEFT_OUT_MODELS:
            return None
        if record._name in SITE_MODELS:
            external_id = self.reference_site_records and record.get_external_id()[record.id]
            return Ref(external_id) if external_id else None
        if record._name in SHIPPED_MODELS:
            external_id = self.external_id(record)
            if external_id.split(".")[0] in self.fresh_modules:
                return Ref(external_id)
            local_id = Ref(self.local_id(external_id))
            self.references[record._name, record.id] = local_id  # a record referring back to it finds it
            self.elements.append(self.record_element(record, local_id))
            return local_id
        external_id = record.get_external_id()[record.id]
        if not external_id:
            raise UserError(_(
                "The workflow “%(workflow)s” refers to “%(record)s” (%(model)s), which has no external id: "
                "a file cannot refer to it.",
                workflow=self.workflow.display_name, record=record.display_name, model=record._description,
            ))
        return Ref(external_id)

    @staticmethod
    def external_id(record):
        """``record``'s external id, made as Odoo's own export makes it (``__export__.<table>_<id>_<uuid>``)
        when it has none."""
        return record._export_rows([["id"]])[0][0]

    def local_id(self, external_id):
        """The id of a record written into the file: the name of its external id, made unique."""
        name = candidate = external_id.split(".")[-1]
        counter = 1
        while candidate in self.local_ids:
            counter += 1
            candidate = f"{name}_{counter}"
        self.local_ids.add(candidate)
        return candidate


class WorkflowAutomationExport(models.TransientModel):
    """Export workflows as a module data file, or as a module to install."""

    _name = "workflow.automation.export"
    _description = "Export Workflows"

    workflow_ids = fields.Many2many(
        "workflow.automation", string="Workflows", required=True, context={"active_test": False},
    )
    switched_on = fields.Boolean(
        string="Switched on",
        help="Install the workflows switched on. Off by default: whoever installs them fills in what "
        "is specific to their database, then switches them on.",
    )
    reference_site_records = fields.Boolean(
        string="Reference users and pipelines",
        help="Refer to the users, pipelines, contacts and projects that have an external id. Otherwise "
        "they are left empty, to be filled in where the workflows are installed.",
    )
    module_name = fields.Char(
        string="Module name", default="my_workflows",
        help="The technical name of the module: lowercase letters, digits and underscores.",
    )
    data_file = fields.Binary(string="File", readonly=True, attachment=False)
    filename = fields.Char(readonly=True)

    @api.model
    def default_get(self, fields_list):
        check_workflow_manager(self.env)
        values = super().default_get(fields_list)
        if self.env.context.get("active_model") == "workflow.automation" and "workflow_ids" in fields_list:
            values["workflow_ids"] = [fields.Command.set(self.env.context.get("active_ids", []))]
        return values

    def action_export_xml(self):
        """Download the workflows as one data file."""
        self.ensure_one()
        check_workflow_manager(self.env)
        return self._download(self._data_file(), "workflow_automation_data.xml")

    def action_export_module(self):
        """Download a module installing the workflows: a zip of its folder."""
        self.ensure_one()
        check_workflow_manager(self.env)
        if not MODULE_NAME.match(self.module_name or ""):
            raise UserError(_(
                "The module name “%s” is not a technical name: use lowercase letters, digits and underscores, "
                "starting with a letter.", self.module_name or "",
            ))
        return self._download(self._module_zip(), f"{self.module_name}.zip")

    def _data_file(self):
        workflows = self.workflow_ids.with_context(lang=None)
        workflows.check_access("read")
        # the English texts, and no default of the context (of the list the export was started from)
        env = self.env(context=dict(clean_context(self.env.context), lang=None))
        return WorkflowDataFile(env, self.reference_site_records).render(workflows, self.switched_on)

    def _module_zip(self):
        folder = self.module_name
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as module:
            module.writestr(f"{folder}/__init__.py", "")
            module.writestr(f"{folder}/__manifest__.py", self._manifest())
            module.writestr(f"{folder}/{DATA_FILE}", self._data_file())
            module.writestr(f"{folder}/README.md", self._readme())
        return archive.getvalue()

    def _manifest(self):
        return pprint.pformat({
            "name": self.module_name.replace("_", " ").capitalize(),
            "version": MANIFEST_VERSION,
            "summary": "Workflows: " + ", ".join(self.workflow_ids.mapped("name")),
            "license": "LGPL-3",
            "depends": [ADDON],
            "data": [DATA_FILE],
            "installable": True,
        }, sort_dicts=False) + "\n"

    def _readme(self):
        state = "switched on" if self.switched_on else "switched off"
        workflows = "".join(
            f"- **{workflow.name}**{': ' + workflow.description if workflow.description else ''}\n"
            for workflow in self.workflow_ids
        )
        return (
            f"# {self.module_name}\n\n"
            f"Workflows for CRM Workflow Automation, installed {state}:\n\n{workflows}\n"
            f"Install: put this folder in an addons path, then `odoo-bin -d <database> -i {self.module_name}`.\n"
            "Fill in what was left empty (users, pipelines), then switch the workflows on: switching on "
            "checks that nothing is missing.\n"
        )

    def _download(self, content, filename):
        self.write({"data_file": base64.b64encode(content), "filename": filename})
        return {
            "type": "ir.actions.act_url",
            "url": f"/web/content/{self._name}/{self.id}/data_file/{filename}?download=true",
            "target": "download",
        }
