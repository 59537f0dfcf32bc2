"""The web console: engineers' workspace, customers' portal and the NOC board.

Server-rendered HTML (Jinja2) on the same FastAPI app as ``/v1``, calling the same
services the ``/v1`` routes call: a page holds no rule of its own, it shows what a
service returned and posts what a person typed back to it.

Layout (one sub-package an area, each with its ``routes.router``):

- ``auth``       login, logout, sessions, accounts and the admin's user pages
- ``workspace``  staff: queues, case page and its actions, NTUs, maintenance
- ``portal``     customer contacts: their cases, replies, RFOs, maintenance, NTUs
- ``noc``        the live NOC board and the change stream the live parts listen to

Shared here: who is signed in (``session``, ``deps``), rendering (``render``), the
error pages (``errors``), the response headers (``headers``) and what is a page
(``paths``). ``install(app)`` mounts all of it on the app ``create_app`` builds.
"""
