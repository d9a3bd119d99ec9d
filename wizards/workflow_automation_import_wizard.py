import ast
import base64
import os
import re

from lxml import etree

from odoo import _, fields, models
from odoo.exceptions import UserError
from odoo.models import MAGIC_COLUMNS
from odoo.tools import config
from odoo.tools.convert import ParseError, xml_import

from .workflow_automation_export import IMPORTED_MODELS, NESTED_MODELS, check_workflow_manager

# The module the external ids of imported records belong to, as for Odoo's own import of records
IMPORT_MODULE = "__import__"
DATA_ROOTS = ("odoo", "data", "openerp")
# What an eval may do: build commands of these kinds, and refer to records by external id
COMMANDS = ("create", "link", "unlink", "set", "clear")
CONSTANTS = (str, int, float, bool, type(None))
# Where Odoo's loader says which line failed
PARSE_LINE = re.compile(r"while parsing .*?:(\d+)")


class DataFileCheck:
    """Refuses, before loading, whatever a data file holds beyond records of the workflows and of
    what they use, with literal values and references to existing records."""

    def __init__(self, env, source):
        self.env = env
        self.lines = source.decode("utf-8", "replace").splitlines()
        self.records = {}  # the ids of the records the file defines so far -> their models

    def check(self, root):
        self._check_container(root)
        return self.records

    def _line(self, element, text=None):
        """The line where ``element`` starts (the parser gives the end of its tag), or the line of
        ``text`` inside its tag."""
        end = element.sourceline
        start = next((number for number in range(end, 0, -1) if f"<{element.tag}" in self.lines[number - 1]), end)
        if text:
            return next((number for number in range(start, end + 1) if text in self.lines[number - 1]), start)
        return start

    def _refuse(self, element, message, text=None):
        record = next((node.get("id") for node in element.iterancestors("record")), element.get("id"))
        line = self._line(element, text)
        if element.tag == "record" or record:
            raise UserError(_("%(error)s (line %(line)s, record %(record)s)", error=message, line=line, record=record))
        raise UserError(_("%(error)s (line %(line)s)", error=message, line=line))

    def _check_attributes(self, element, allowed):
        unknown = set(element.attrib) - set(allowed)
        if unknown:
            self._refuse(element, _("attribute “%(attribute)s” of <%(tag)s> is not allowed",
                                    attribute=sorted(unknown)[0], tag=element.tag))

    def _children(self, element):
        """The elements in ``element``, comments left aside."""
        return [child for child in element if not isinstance(child, etree._Comment)]

    def _check_container(self, element):
        if element.tag not in DATA_ROOTS:
            self._refuse(element, _("a data file holds <odoo>, <data> and <record> elements only, not <%s>",
                                    element.tag))
        self._check_attributes(element, ["noupdate"])
        for child in self._children(element):
            if child.tag == "record":
                self._check_record(child)
            else:
                self._check_container(child)

    def _check_record(self, record):
        """Only records of the workflows and of what they use, with literal values and references."""
        self._check_attributes(record, ["id", "model"])
        record_id, model = record.get("id") or "", record.get("model")
        if model not in IMPORTED_MODELS:
            self._refuse(record, _("records of “%s” cannot be imported", model))
        if not re.fullmatch(r"\w+", record_id):
            self._refuse(record, _("the record needs an id of letters, digits and underscores, without a module"))
        if model == "workflow.automation" and self.env.ref(f"{IMPORT_MODULE}.{record_id}", raise_if_not_found=False):
            self._refuse(record, _("this workflow was already imported: delete it first to import it again"))
        Model = self.env[model]
        for element in self._children(record):
            if element.tag != "field":
                self._refuse(element, _("a record holds <field> elements only, not <%s>", element.tag))
            self._check_field(element, Model)
        self.records[record_id] = model

    def _check_field(self, element, Model):
        self._check_attributes(element, ["name", "ref", "eval", "type"])
        field = self._field(element, Model, element.get("name"))
        if element.get("ref"):
            self._check_ref(element, field, element.get("ref"))
        elif element.get("eval"):
            try:
                expression = ast.parse(element.get("eval").strip(), mode="eval").body
            except SyntaxError as error:
                self._refuse(element, _("field “%(field)s”: %(error)s", field=field.name, error=error.msg))
            self._check_value(element, field, expression)
        elif len(element) and (element.get("type") not in ("html", "xml") or field.type != "html"):
            self._refuse(element, _("field “%s”: only an HTML field may hold elements", field.name))
        elif element.get("type") not in (None, "char", "html", "xml", "int", "float"):
            self._refuse(element, _("field “%s”: unknown type", field.name))

    def _field(self, element, Model, name):
        field = Model._fields.get(name)
        if not field or name in MAGIC_COLUMNS or not (field.store or field.inverse):
            self._refuse(element, _("“%(model)s” has no field “%(field)s” to import",
                                    model=Model._name, field=name))
        return field

    # ------------------------------------------------------------------
    # Evals: literals, commands and references only
    # ------------------------------------------------------------------

    def _check_value(self, element, field, node):
        if field.type in ("one2many", "many2many"):
            if not isinstance(node, ast.List):
                self._refuse(element, _("field “%s”: a list of commands is expected", field.name))
            for item in node.elts:
                self._check_command(element, field, item)
        elif field.type in ("many2one", "many2one_reference") and self._is_ref(node):
            self._check_ref(element, field, node.args[0].value)
        elif not self._is_constant(node):
            self._refuse(element, _("field “%s”: only literal values and ref() may be used", field.name))

    def _check_command(self, element, field, node):
        func = getattr(node, "func", None)
        if not (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "Command"
                and func.attr in COMMANDS and not node.keywords):
            self._refuse(element, _("field “%s”: only Command.create, link, unlink, set and clear may be used",
                                    field.name))
        if func.attr == "create":
            self._check_create(element, field, node.args)
        for argument in node.args if func.attr != "create" else ():
            for item in argument.elts if func.attr == "set" and isinstance(argument, ast.List) else [argument]:
                if self._is_ref(item):
                    self._check_ref(element, field, item.args[0].value)
                elif not self._is_constant(item):
                    self._refuse(element, _("field “%s”: only ref() may name a record", field.name))

    def _check_create(self, element, field, arguments):
        if field.comodel_name not in (*IMPORTED_MODELS, *NESTED_MODELS):
            self._refuse(element, _("field “%s”: its records cannot be created by a file", field.name))
        if len(arguments) != 1 or not isinstance(arguments[0], ast.Dict):
            self._refuse(element, _("field “%s”: Command.create takes the values of the line", field.name))
        Comodel = self.env[field.comodel_name]
        for key, value in zip(arguments[0].keys, arguments[0].values, strict=True):
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                self._refuse(element, _("field “%s”: the values of a line are named by strings", field.name))
            self._check_value(element, self._field(element, Comodel, key.value), value)

    @staticmethod
    def _is_ref(node):
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "ref"
                and len(node.args) == 1 and not node.keywords
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str))

    @staticmethod
    def _is_constant(node):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            node = node.operand
        return isinstance(node, ast.Constant) and isinstance(node.value, CONSTANTS)

    def _check_ref(self, element, field, external_id):
        """The record named ``external_id`` exists (above in the file, or in the database) and is
        of the model ``field`` refers to."""
        if "." in external_id:
            found = self.env["ir.model.data"]._xmlid_to_res_model_res_id(external_id, raise_if_not_found=False)
            model = found and found[0]
        else:
            model = self.records.get(external_id)
        label = field._description_string(self.env)
        if not model:
            self._refuse(element, _("field “%(field)s”: “%(ref)s” not found", field=label, ref=external_id),
                         external_id)
        if field.comodel_name and model != field.comodel_name:
            self._refuse(element, _("field “%(field)s”: “%(ref)s” is not a record of “%(model)s”",
                                    field=label, ref=external_id, model=field.comodel_name), external_id)


class WorkflowAutomationImportWizard(models.TransientModel):
    """Import workflows from a data file, as a module would install it: nothing on error."""

    _name = "workflow.automation.import.wizard"
    _description = "Import Workflows"

    data_file = fields.Binary(string="File", required=True, help="An XML file made by “Export as XML”.")
    filename = fields.Char()

    def action_import(self):
        """Create the file's records and its workflows, switched off; open the workflows."""
        self.ensure_one()
        check_workflow_manager(self.env)
        root = self._parse()
        records = DataFileCheck(self.env, base64.b64decode(self.data_file)).check(root)
        with self.env.cr.savepoint():
            self._load(root)
        workflows = self.env["workflow.automation"].browse(
            self.env.ref(f"{IMPORT_MODULE}.{record_id}").id
            for record_id, model in records.items() if model == "workflow.automation"
        )
        return {
            "type": "ir.actions.act_window",
            "name": _("Imported workflows"),
            "res_model": "workflow.automation",
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
            "domain": [("id", "in", workflows.ids)],
            "context": {"active_test": False},
        }

    # ------------------------------------------------------------------
    # Reading the file
    # ------------------------------------------------------------------

    def _file_name(self):
        return os.path.basename(self.filename or "workflows.xml")

    def _parse(self):
        parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        try:
            return etree.fromstring(base64.b64decode(self.data_file), parser, base_url=self._file_name())
        except etree.XMLSyntaxError as error:
            raise UserError(_("The file is not valid XML: %s", error)) from None

    # ------------------------------------------------------------------
    # Loading, as a module installs its data
    # ------------------------------------------------------------------

    def _load(self, root):
        """Odoo's loader of module data, with the user's rights: every check of the models applies."""
        for active in root.xpath("//record[@model='workflow.automation']/field[@name='active']"):
            active.attrib.pop("ref", None)
            active.set("eval", "False")  # imported switched off, whatever the file says
        schema = etree.RelaxNG(etree.parse(os.path.join(config["root_path"], "import_xml.rng")))
        if not schema.validate(root.getroottree()):
            error = schema.error_log.last_error
            raise UserError(_("The file is not a data file: %(error)s (line %(line)s)",
                              error=error.message, line=error.line))
        try:
            xml_import(self.env, IMPORT_MODULE, {}, "init", xml_filename=self._file_name()).parse(root)
        except ParseError as error:
            raise UserError(self._describe(error, root)) from None

    def _describe(self, error, root):
        """Odoo's error at install, with the line and the id of the record it failed on."""
        message = str(error.args[0] if error.args else error)
        line = int(PARSE_LINE.search(message).group(1)) if PARSE_LINE.search(message) else 0
        record = next((node.get("id") for node in root.iter("record") if node.sourceline == line), "?")
        if error.__cause__:
            detail = str(error.__cause__.args[0] if error.__cause__.args else error.__cause__)
        else:  # a refusal of the models: Odoo's message, the line that starts it left aside
            detail = message.split("\n", 1)[-1].split("\n\nView error context")[0].strip()
        return _("%(error)s (line %(line)s, record %(record)s)", error=detail, line=line, record=record)
