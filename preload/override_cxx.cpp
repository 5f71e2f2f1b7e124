// placeholder: operator new/delete come with the allocator
