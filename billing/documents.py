"""Invoice and credit note documents: HTML (Django templates, ``billing/invoice.html`` and
``billing/credit_note.html``) and PDF (drawn with ReportLab, pure Python, so no system
packages are needed).

Each pair is made from the same data (``invoice_document``, ``credit_note_document``), so
the two always say the same thing. Documents are rendered on request from the stored
document (immutable once issued) rather than stored.
"""

from __future__ import annotations

import functools
import io
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Address

from .models import CreditNote, CreditNoteLine, Invoice, InvoiceLine


@dataclass(frozen=True)
class TaxSummary:
    name: str
    rate: Decimal
    net: Decimal
    tax: Decimal


@dataclass
class InvoiceDocument:
    operator: str
    title: str
    invoice: Invoice
    customer: str
    account_number: str
    address_lines: list[str]
    issued_on: str
    lines: list[InvoiceLine]
    taxes: list[TaxSummary] = field(default_factory=list)
    credit_notes: list = field(default_factory=list)


def invoice_document(invoice: Invoice) -> InvoiceDocument:
    """What an invoice document shows: who, what, the tax per rate and the totals."""
    contact = invoice.account.contact
    address = Address.objects.filter(contact=contact, kind=Address.Kind.BILLING).first()
    lines = list(invoice.lines.select_related("product").order_by("position"))
    per_rate: dict[tuple[str, Decimal], list[Decimal]] = defaultdict(lambda: [Decimal("0.00"), Decimal("0.00")])
    for line in lines:
        per_rate[(line.tax_name, line.tax_rate)][0] += line.net
        per_rate[(line.tax_name, line.tax_rate)][1] += line.tax
    title = {Invoice.State.DRAFT: "Draft invoice (not valid for payment)", Invoice.State.CANCELLED: "Invoice (cancelled)"}
    return InvoiceDocument(
        operator=settings.OPERATOR_NAME,
        title=title.get(invoice.state, "Invoice"),
        invoice=invoice,
        customer=contact.display_name,
        account_number=invoice.account.number,
        address_lines=[part for part in (address.line1, address.line2, f"{address.postal_code} {address.city}".strip(),
                                         address.country) if part] if address else [],
        issued_on=timezone.localtime(invoice.issued_at).strftime("%Y-%m-%d") if invoice.issued_at else "—",
        lines=lines,
        taxes=[TaxSummary(name or "Tax", rate, net, tax) for (name, rate), (net, tax) in sorted(per_rate.items())],
        credit_notes=list(invoice.credit_notes.order_by("issued_at")),
    )


def invoice_filename(invoice: Invoice, extension: str) -> str:
    return f"{invoice.number or f'draft-{invoice.pk}'}.{extension}"


def invoice_html(invoice: Invoice) -> str:
    return render_to_string("billing/invoice.html", {"document": invoice_document(invoice), "totals": invoice})


# A Unicode font (Greek names and addresses) when the system has one; ReportLab's built-in
# Helvetica covers Latin-1 only.
UNICODE_FONTS = [
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf", "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"),
]


@functools.cache
def _fonts() -> tuple[str, str]:
    """(regular, bold) font names for the PDF."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for regular, bold in UNICODE_FONTS:
        if Path(regular).exists() and Path(bold).exists():
            pdfmetrics.registerFont(TTFont("InvoiceSans", regular))
            pdfmetrics.registerFont(TTFont("InvoiceSans-Bold", bold))
            pdfmetrics.registerFontFamily("InvoiceSans", normal="InvoiceSans", bold="InvoiceSans-Bold")
            return "InvoiceSans", "InvoiceSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _pdf_render(*, title: str, operator: str, facts: list[str], customer_lines: list[str], header: list[str],
                rows: list[list], widths_mm: list[int], totals: list[list[str]], notes: list[str]) -> bytes:
    """The one A4 layout of our documents: operator, title, facts, customer, the lines'
    table (the description, column 2, wraps), the totals box, notes in small print."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    regular, bold = _fonts()
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = bold if style.name in {"Title", "Heading2"} else regular
    small = styles["BodyText"].clone("small", fontSize=8, leading=10)
    buffer = io.BytesIO()
    pdf = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm, topMargin=18 * mm,
                            bottomMargin=18 * mm, title=title, author=operator)
    story = [Paragraph(escape(operator), styles["Title"]), Paragraph(escape(title), styles["Heading2"])]
    story += [Paragraph(escape(fact), styles["BodyText"]) for fact in facts]
    story += [Spacer(1, 4 * mm), Paragraph("<br/>".join(escape(part) for part in customer_lines), styles["BodyText"]),
              Spacer(1, 6 * mm)]
    body = [[row[0], Paragraph(escape(row[1]), small), *row[2:]] for row in rows]
    table = Table([header, *body], colWidths=[width * mm for width in widths_mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTSIZE", (0, 0), (-1, -1), 8), ("FONTNAME", (0, 0), (-1, -1), regular), ("FONTNAME", (0, 0), (-1, 0), bold),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black), ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    story += [table, Spacer(1, 6 * mm)]
    summary = Table(totals, colWidths=[60 * mm, 30 * mm], hAlign="RIGHT")
    summary.setStyle(TableStyle([("ALIGN", (1, 0), (1, -1), "RIGHT"), ("FONTNAME", (0, 0), (-1, -1), regular),
                                 ("FONTNAME", (0, -1), (-1, -1), bold),
                                 ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black)]))
    story.append(summary)
    story += [Paragraph(escape(note), small) for note in notes]
    pdf.build(story)
    return buffer.getvalue()


def _totals(document, obj, currency: str, total_label: str) -> list[list[str]]:
    totals = [[f"{tax.name} {tax.rate}% on {tax.net:.2f}", f"{tax.tax:.2f} {currency}"] for tax in document.taxes]
    return totals + [["Net", f"{obj.net_total:.2f} {currency}"], ["Tax", f"{obj.tax_total:.2f} {currency}"],
                     [total_label, f"{obj.gross_total:.2f} {currency}"]]


def invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF (A4), the same content as the HTML."""
    document = invoice_document(invoice)
    currency = invoice.currency
    return _pdf_render(
        title=f"{document.title} {invoice.number or ''}".strip(), operator=document.operator,
        facts=[f"Date: {document.issued_on}    Account: {document.account_number}"],
        customer_lines=[document.customer, *document.address_lines],
        header=["#", "Description", "Qty", "Unit price", "Net", "Tax", "Total"],
        rows=[[str(line.position), line.description, f"{line.quantity.normalize():f}", f"{line.unit_price:.2f}", f"{line.net:.2f}",
               f"{line.tax:.2f} ({line.tax_rate}%)", f"{line.gross:.2f}"] for line in document.lines],
        widths_mm=[8, 72, 12, 20, 18, 26, 18], totals=_totals(document, invoice, currency, "Total"),
        notes=[f"Credit note {note.number} of {timezone.localtime(note.issued_at):%Y-%m-%d}: {note.gross_total:.2f} {currency} "
               f"({note.reason})" for note in document.credit_notes],
    )


# --- Credit notes ------------------------------------------------------------------------

@dataclass
class CreditNoteDocument:
    operator: str
    title: str
    note: CreditNote
    customer: str
    account_number: str
    address_lines: list[str]
    issued_on: str
    invoice_number: str
    invoice_issued_on: str
    lines: list[CreditNoteLine]
    taxes: list[TaxSummary] = field(default_factory=list)


def _address_lines(contact) -> list[str]:
    address = Address.objects.filter(contact=contact, kind=Address.Kind.BILLING).first()
    if address is None:
        return []
    return [part for part in (address.line1, address.line2, f"{address.postal_code} {address.city}".strip(), address.country) if part]


def credit_note_document(note: CreditNote) -> CreditNoteDocument:
    """What a credit note document shows: who, which invoice it corrects, why, what is given
    back per line (with the tax per rate) and the totals."""
    contact = note.account.contact
    lines = list(note.lines.select_related("invoice_line").order_by("invoice_line__position"))
    per_rate: dict[tuple[str, Decimal], list[Decimal]] = defaultdict(lambda: [Decimal("0.00"), Decimal("0.00")])
    for line in lines:
        per_rate[(line.invoice_line.tax_name, line.tax_rate)][0] += line.net
        per_rate[(line.invoice_line.tax_name, line.tax_rate)][1] += line.tax
    invoice = note.invoice
    return CreditNoteDocument(
        operator=settings.OPERATOR_NAME,
        title="Credit note",
        note=note,
        customer=contact.display_name,
        account_number=note.account.number,
        address_lines=_address_lines(contact),
        issued_on=timezone.localtime(note.issued_at).strftime("%Y-%m-%d"),
        invoice_number=invoice.number or "",
        invoice_issued_on=timezone.localtime(invoice.issued_at).strftime("%Y-%m-%d") if invoice.issued_at else "—",
        lines=lines,
        taxes=[TaxSummary(name or "Tax", rate, net, tax) for (name, rate), (net, tax) in sorted(per_rate.items())],
    )


def credit_note_filename(note: CreditNote, extension: str) -> str:
    return f"{note.number}.{extension}"


def credit_note_html(note: CreditNote) -> str:
    return render_to_string("billing/credit_note.html", {"document": credit_note_document(note), "totals": note})


def credit_note_pdf(note: CreditNote) -> bytes:
    """The credit note as a PDF (A4), the same content as the HTML."""
    document = credit_note_document(note)
    return _pdf_render(
        title=f"{document.title} {note.number}", operator=document.operator,
        facts=[f"Date: {document.issued_on}    Account: {document.account_number}",
               f"Corrects invoice {document.invoice_number} of {document.invoice_issued_on}", f"Reason: {note.reason}"],
        customer_lines=[document.customer, *document.address_lines],
        header=["Invoice line", "Description", "Net", "Tax", "Total"],
        rows=[[str(line.invoice_line.position), line.description, f"{line.net:.2f}", f"{line.tax:.2f} ({line.tax_rate}%)",
               f"{line.gross:.2f}"] for line in document.lines],
        widths_mm=[20, 88, 20, 28, 20], totals=_totals(document, note, note.currency, "Total credited"), notes=[],
    )
