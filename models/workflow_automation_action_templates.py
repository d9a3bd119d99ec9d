import re
from contextlib import contextmanager

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

# The texts rendered as inline templates on the records (names, summaries and notes)
TEMPLATE_FIELDS = ("new_name", "activity_summary", "activity_note", "note_body")
TEMPLATE_EDITOR_GROUP = "mail.group_mail_template_editor"
# How Python and the ORM say that a record has no such field
MISSING_FIELD = re.compile(r"'([\w.]+)' object has no attribute '(\w+)'")


class WorkflowAutomationAction(models.Model):
    """The texts of the actions (names, summaries, notes) are inline templates, rendered on
    the records in their language, with the powers of their author (as Odoo's mail
    templates), whatever the rights the action itself runs with."""

    _inherit = "workflow.automation.action"

    template_author_id = fields.Many2one(
        "res.users",
        string="Texts written by",
        readonly=True,
        copy=False,
        ondelete="set null",
        help="Who last wrote the name, summary or note templates: they render with that user's powers, "
        "expressions only if that user is a Mail Template Editor.",
    )

    # ------------------------------------------------------------------
    # Texts render with their author's powers (as Odoo's mail templates)
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        actions = super().create([self._with_template_author(vals) for vals in vals_list])
        actions._check_template_expressions()
        return actions

    def write(self, vals):
        if set(TEMPLATE_FIELDS) & vals.keys():
            self._check_template_expressions(vals)
        return super().write(self._with_template_author(vals))

    def _update_field_translations(self, field_name, translations, digest=None, source_lang=None):
        if field_name not in TEMPLATE_FIELDS:
            return super()._update_field_translations(field_name, translations, digest, source_lang)
        for text in translations.values():
            self._check_template_expressions({field_name: text})
        # the author first: the ORM writes the translations in SQL, bypassing ``write``
        self._write({"template_author_id": self.env.uid})
        return super()._update_field_translations(field_name, translations, digest, source_lang)

    def _with_template_author(self, vals):
        """``vals`` with whoever writes a text as its author: never what the client says."""
        vals = {name: value for name, value in vals.items() if name != "template_author_id"}
        if set(TEMPLATE_FIELDS) & vals.keys():
            vals["template_author_id"] = self.env.uid
        return vals

    @api.model
    def _is_template_editor(self, user):
        return user._is_superuser() or user.has_group(TEMPLATE_EDITOR_GROUP)

    def _has_unsafe_expression(self, template):
        """Whether ``template`` holds more than the placeholders Odoo lets any user write."""
        return self.env["mail.render.mixin"]._has_unsafe_expression_template_inline_template(
            template or "", self.target
        )

    def _unsafe_expression_refusal(self):
        return self.env._(
            "only members of the group “%(group)s” may write expressions here; use placeholders such as "
            "{{ object.name }} or {{ object.partner_id.name }}.",
            group=self.env.ref(TEMPLATE_EDITOR_GROUP).name,
        )

    def _check_template_expressions(self, vals=None):
        """At save, Odoo's rule for mail templates (``mail.render.mixin``): who is not a template
        editor may write field placeholders only, in all the texts of the actions they save
        (``vals``: what a write is about to change)."""
        if self.env.su or self._is_template_editor(self.env.user):
            return
        vals = vals or {}
        for action in self:
            for field_name in TEMPLATE_FIELDS:
                if action._has_unsafe_expression(vals.get(field_name, action[field_name])):
                    action._raise_invalid(field_name, action._unsafe_expression_refusal())

    def _check_author_may_render(self, template):
        """At run time, the same rule for the author: the action's elevated rights are not theirs."""
        # actions saved before their authors were recorded: their last writer
        author = self.template_author_id or self.write_uid
        if not (author and self._is_template_editor(author)) and self._has_unsafe_expression(template):
            raise AccessError(self.env._(
                "only members of the group “%(group)s” may write expressions here, and its author, "
                "%(author)s, is not one.",
                group=self.env.ref(TEMPLATE_EDITOR_GROUP).name,
                author=author.name or self.env._("unknown"),
            ))

    # ------------------------------------------------------------------
    # Rendering
    # ------------------------------------------------------------------

    def _render(self, field_name, records, langs):
        """``{record id: text}``: the template ``field_name`` rendered on each record in its language
        ``langs[record id]``, as ``mail.render.mixin._render_field`` renders per language, with the
        powers of the template's author."""
        texts = {}
        for lang, lang_records in records.grouped(lambda record: langs[record.id]).items():
            action = self.with_context(lang=lang)
            template = action[field_name] or ""
            with action._naming_template(self._fields[field_name]._description_string(self.env)):
                action._check_author_may_render(template)
                texts.update(action.env["mail.render.mixin"]._render_template(
                    template, records._name, lang_records.ids, engine="inline_template"
                ))
        return texts

    @api.model
    def _record_langs(self, records):
        """``{record id: language}`` of texts about each record: its customer's (an opportunity's own
        *Language*), else its owner's, else its company's."""
        return {
            record.id: (
                ("lang_id" in record and record.lang_id.code) or record.partner_id.lang or record.user_id.lang
                or record.company_id.partner_id.lang or self.env.lang
            )
            for record in records
        }

    # ------------------------------------------------------------------
    # Errors of templates: which one failed, and why in a line
    # ------------------------------------------------------------------

    @contextmanager
    def _naming_template(self, name):
        """Say which template failed, and why in a line, rather than the renderer's traceback."""
        try:
            yield
        except (UserError, SyntaxError) as error:
            raise UserError(self.env._(
                "Template “%(template)s”: %(error)s", template=name, error=self._root_cause_text(error)
            )) from error

    @api.model
    def _root_cause_text(self, error):
        """What went wrong at the bottom of a failed rendering: a missing field, or the first line of
        the original error."""
        cause = error
        while cause.__cause__ is not None:
            cause = cause.__cause__
        missing = MISSING_FIELD.search(str(cause))
        if missing and missing.group(1) in self.env:
            return self.env._(
                "field “%(field)s” does not exist on %(model)s",
                field=missing.group(2),
                model=self.env["ir.model"]._get(missing.group(1)).name,
            )
        return self._error_text(cause)
