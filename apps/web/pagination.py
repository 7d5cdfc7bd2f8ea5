"""The API's default pagination."""

from rest_framework.pagination import PageNumberPagination


class PagePagination(PageNumberPagination):
    """50 a page by default; `?page_size=` up to 100, so no request can ask for everything."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100
